import test from 'ava'
import { quote, QUOTE_MAX_CHARS } from '../../src/quote.ts'

test('short text is quoted whole', (t) => {
  t.is(quote('job-1'), '"job-1"')
  t.is(quote(''), '""')
  t.is(quote('x'.repeat(QUOTE_MAX_CHARS)), `"${'x'.repeat(QUOTE_MAX_CHARS)}"`)
})

test('long text is cut to a prefix that says how long the whole was', (t) => {
  const shown = quote('a'.repeat(100_000))
  t.is(shown, `"${'a'.repeat(QUOTE_MAX_CHARS)}"…(100000 chars)`)
  t.is(quote('abcdef', 3), '"abc"…(6 chars)')
})

test('control characters and quotes are escaped, and a cut never splits a surrogate pair', (t) => {
  t.is(quote('a"b\nc'), '"a\\"b\\nc"')
  const shown = quote('ab😀cd', 3)
  t.is(shown, '"ab"…(6 chars)')
  t.false(shown.includes('\ufffd'))
})

test('non-strings are shown as text', (t) => {
  t.is(quote(42), '"42"')
  t.is(quote(undefined), '"undefined"')
})
