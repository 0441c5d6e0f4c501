// inframind/nlp:1 — entry point of the image.
// One-shot: main.js analyze | sentiment | entities | embed [dimension]: the whole of stdin in, one
// JSON document out. Input: {"text": "..."} or plain UTF-8 text. Bad input: a message on stderr and
// exit code 2.
// Warm service: main.js serve (HTTP, see serve.js and docs/CONTAINERS.md).
// Test behaviours of the node's runtime tests: main.js testserver (see testserver.js).
import { BadInputError } from './errors.js'

const EXIT_BAD_INPUT = 2

async function oneShot (taskName, args) {
  // Loaded here, not at the top: the test server has no use for the model.
  const { analyse, taskOf, textOfBytes } = await import('./nlp.js')
  const task = taskOf(taskName)
  const result = analyse(task, textOfBytes(await readStdin()), args)
  process.stdout.write(JSON.stringify(result) + '\n')
}

async function readStdin () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks)
}

async function main () {
  const [command = 'analyze', ...args] = process.argv.slice(2)
  if (command === 'serve') {
    await (await import('./serve.js')).serve()
  } else if (command === 'testserver') {
    await (await import('./testserver.js')).serve()
  } else {
    await oneShot(command, args)
  }
}

main().catch((err) => {
  const bad = err instanceof BadInputError
  process.stderr.write(`nlp: ${bad ? err.message : err.stack}\n`)
  process.exitCode = bad ? EXIT_BAD_INPUT : 1
})
