import test from 'ava'
import { readFileSync } from 'node:fs'
import protobuf from 'protobufjs'
import { GENERATED_FILE, generateProtocolTypes, ProtocolGenerationError } from '../../scripts/gen-protocol-types.ts'

test('src/protocol/generated.ts is what the generator makes of the .proto files today (else: npm run gen:protocol)', (t) => {
  const committed = readFileSync(GENERATED_FILE, 'utf8').split('\n')
  const fresh = generateProtocolTypes().split('\n')
  // The first differing line is enough to see what changed; the whole file would bury it.
  const at = fresh.findIndex((line, i) => committed[i] !== line)
  if (at !== -1 || committed.length !== fresh.length) {
    const line = at === -1 ? fresh.length : at
    t.is(committed[line], fresh[line], `generated.ts line ${line + 1} is out of date: run npm run gen:protocol`)
  }
  t.is(committed.length, fresh.length)
})

function parse (source: string): protobuf.Root {
  const root = protobuf.parse(`syntax = "proto3";\npackage inframind.v1;\n${source}`, { keepCase: false, alternateCommentMode: true }).root
  root.resolveAll()
  return root
}

test('field types follow the decoded shape: longs as number, bytes, enum names, arrays, records, nullable messages', (t) => {
  const out = generateProtocolTypes(parse(`
    // A thing.
    // Two lines.
    message Thing {
      uint64 big = 1;
      bytes raw = 2;
      Color color = 3;
      repeated string tags = 4;
      map<string, Part> parts = 5;
      // The part in use.
      Part part = 6;
      repeated Color colors = 7;
      message Inner { bool on = 1; }
      Inner inner = 8;
      oneof pick { string a = 9; Part b = 10; }
    }
    message Part {}
    enum Color { COLOR_UNSPECIFIED = 0; RED = 1; }
  `))
  t.true(out.includes('/**\n * A thing.\n * Two lines.\n */\nexport interface Thing {'))
  for (const line of [
    '  big: number', '  raw: Uint8Array', '  color: Color', '  tags: string[]', '  parts: Record<string, Part>',
    '  /** The part in use. */\n  part: Part | null', '  colors: Color[]', '  inner: Thing_Inner | null', '  a?: string', '  b?: Part',
    'export type Part = Record<string, never>', "export type Color = 'COLOR_UNSPECIFIED' | 'RED'",
    'export interface Thing_Inner {\n  on: boolean\n}', "  'inframind.v1.Thing': Thing", "  'inframind.v1.Thing.Inner': Thing_Inner"
  ]) t.true(out.includes(line), line)
})

test('a field of a type outside the package is refused rather than typed wrongly', (t) => {
  const root = protobuf.parse('syntax = "proto3"; package other; message X {}').root
  protobuf.parse('syntax = "proto3"; package inframind.v1; message Y { other.X x = 1; }', root)
  root.resolveAll()
  t.throws(() => generateProtocolTypes(root), { instanceOf: ProtocolGenerationError })
})
