import test from 'ava'
import {
  checkReplicatedResponse, checkResponse, intervalAt, intervalBounds, lastInterval, stateAt,
  type RefusalCode, type SubscriptionState, type SubscriptionTerms
} from '../../src/subscriptions/rules.ts'

// created at 1000 with period 10: activeAt 1010, interval k is [1010 + 10(k-1), 1010 + 10k).
const recurring: SubscriptionTerms = { activeAt: 1010, period: 10, frequency: 3, redundancy: 2, cancelledAt: 0 }
// One-time: period 0, active at creation (1000), interval 1 forever.
const oneTime: SubscriptionTerms = { activeAt: 1000, period: 0, frequency: 1, redundancy: 2, cancelledAt: 0 }
const cancelled: SubscriptionTerms = { ...recurring, cancelledAt: 1015 }

test('intervalAt: floor((now - activeAt) / period) + 1, 0 before activeAt, 1 forever when period is 0', (t) => {
  const rows: Array<[string, number, number, number, number]> = [
    ['the second before activeAt', 1010, 10, 1009, 0],
    ['at activeAt', 1010, 10, 1010, 1],
    ['the last second of interval 1', 1010, 10, 1019, 1],
    ['the first second of interval 2', 1010, 10, 1020, 2],
    ['interval frequency (3)', 1010, 10, 1039, 3],
    ['interval frequency + 1', 1010, 10, 1040, 4],
    ['period 0 at activeAt', 1000, 0, 1000, 1],
    ['period 0 a year later', 1000, 0, 1000 + 365 * 86400, 1],
    ['period 0 before activeAt', 1000, 0, 999, 0]
  ]
  for (const [name, activeAt, period, now, expected] of rows) t.is(intervalAt(activeAt, period, now), expected, name)
})

test('lastInterval and intervalBounds', (t) => {
  t.is(lastInterval(recurring), 3)
  t.is(lastInterval(oneTime), 1)
  // Even if a frequency > 1 slipped in with period 0, time never reaches interval 2.
  t.is(lastInterval({ period: 0, frequency: 5 }), 1)
  t.deepEqual(intervalBounds(recurring, 2), { startS: 1020, endS: 1030 })
  t.deepEqual(intervalBounds(oneTime, 1), { startS: 1000, endS: Number.POSITIVE_INFINITY })
})

test('stateAt: pending, active, completed (by time or by the last interval filled), cancelled', (t) => {
  const rows: Array<[string, SubscriptionTerms, number, number, SubscriptionState]> = [
    ['the second before activeAt', recurring, 1009, 0, 'pending'],
    ['at activeAt', recurring, 1010, 0, 'active'],
    ['last second of the last interval', recurring, 1039, 0, 'active'],
    ['first second after the last interval', recurring, 1040, 0, 'completed'],
    ['last interval filled before its end', recurring, 1031, 2, 'completed'],
    ['last interval one short', recurring, 1031, 1, 'active'],
    ['a filled count of an earlier interval does not complete it', recurring, 1021, 2, 'active'],
    ['one-time, nothing delivered, a year later', oneTime, 1000 + 365 * 86400, 0, 'active'],
    ['one-time, redundancy met', oneTime, 1001, 2, 'completed'],
    ['one-time before creation second', oneTime, 999, 0, 'pending'],
    ['cancelled while active', cancelled, 1016, 0, 'cancelled'],
    ['cancelled wins over completed', cancelled, 2000, 2, 'cancelled'],
    ['cancelled wins over pending', cancelled, 1000, 0, 'cancelled']
  ]
  for (const [name, terms, now, deliveredInLast, expected] of rows) t.is(stateAt(terms, now, deliveredInLast), expected, name)
})

test('checkResponse: the Coordinator\'s checks in its order', (t) => {
  const rows: Array<[string, SubscriptionTerms | undefined, string[], number, string, number, RefusalCode | null]> = [
    // name, terms, delivered this interval, claimed interval, node, now, expected
    ['unknown subscription', undefined, [], 1, 'n1', 1010, 'SUBSCRIPTION_NOT_FOUND'],
    ['cancelled (checked before time, as the SDK\'s activeAt = max)', cancelled, [], 1, 'n1', 1016, 'SUBSCRIPTION_CANCELLED'],
    ['cancelled even for an interval that would mismatch', cancelled, [], 9, 'n1', 1016, 'SUBSCRIPTION_CANCELLED'],
    ['the second before activeAt', recurring, [], 1, 'n1', 1009, 'SUBSCRIPTION_NOT_ACTIVE'],
    ['before activeAt wins over a wrong interval', recurring, [], 0, 'n1', 1009, 'SUBSCRIPTION_NOT_ACTIVE'],
    ['at activeAt, interval 1', recurring, [], 1, 'n1', 1010, null],
    ['last second of interval 1', recurring, [], 1, 'n1', 1019, null],
    ['first second of interval 2, still claiming 1 (late)', recurring, [], 1, 'n1', 1020, 'INTERVAL_MISMATCH'],
    ['claiming a future interval (early)', recurring, [], 3, 'n1', 1020, 'INTERVAL_MISMATCH'],
    ['first second of interval 2', recurring, [], 2, 'n1', 1020, null],
    ['interval frequency', recurring, [], 3, 'n1', 1039, null],
    ['interval frequency + 1 claimed at its time', recurring, [], 4, 'n1', 1040, 'SUBSCRIPTION_COMPLETED'],
    ['interval frequency claimed after it ended: mismatch comes first', recurring, [], 3, 'n1', 1040, 'INTERVAL_MISMATCH'],
    ['redundancy full', recurring, ['n1', 'n2'], 2, 'n3', 1020, 'INTERVAL_COMPLETED'],
    ['redundancy full wins over a repeat node', recurring, ['n1', 'n2'], 2, 'n1', 1020, 'INTERVAL_COMPLETED'],
    ['repeat node', recurring, ['n1'], 2, 'n1', 1020, 'NODE_RESPONDED_ALREADY'],
    ['second distinct node', recurring, ['n1'], 2, 'n2', 1020, null],
    ['one-time at creation', oneTime, [], 1, 'n1', 1000, null],
    ['one-time a year later (never completes by time)', oneTime, ['n1'], 1, 'n2', 1000 + 365 * 86400, null],
    ['one-time claiming interval 2', oneTime, [], 2, 'n1', 5000, 'INTERVAL_MISMATCH'],
    ['one-time with redundancy met: INTERVAL_COMPLETED forever', oneTime, ['n1', 'n2'], 1, 'n3', 9999, 'INTERVAL_COMPLETED']
  ]
  for (const [name, terms, delivered, interval, nodeId, nowS, expected] of rows) {
    t.is(checkResponse(terms, delivered, { interval, nodeId, nowS }), expected, name)
  }
})

test('checkReplicatedResponse: the same rules without this node\'s clock', (t) => {
  const rows: Array<[string, SubscriptionTerms | undefined, string[], number, string, number, RefusalCode | null]> = [
    // name, terms, delivered, interval, node, acceptedAtS (the recording coordinator's), expected
    ['unknown subscription', undefined, [], 1, 'n1', 1010, 'SUBSCRIPTION_NOT_FOUND'],
    ['accepted before the cancel stands', cancelled, [], 1, 'n1', 1014, null],
    ['accepted at the cancel second', cancelled, [], 1, 'n1', 1015, 'SUBSCRIPTION_CANCELLED'],
    ['accepted before activeAt', recurring, [], 1, 'n1', 1009, 'SUBSCRIPTION_NOT_ACTIVE'],
    ['an old interval, arriving long after (no time check)', recurring, [], 1, 'n1', 1012, null],
    ['interval 0', recurring, [], 0, 'n1', 1012, 'INTERVAL_MISMATCH'],
    ['one-time interval 2', oneTime, [], 2, 'n1', 1012, 'INTERVAL_MISMATCH'],
    ['interval frequency + 1', recurring, [], 4, 'n1', 1045, 'SUBSCRIPTION_COMPLETED'],
    ['beyond redundancy', recurring, ['a', 'b'], 2, 'c', 1021, 'INTERVAL_COMPLETED'],
    ['repeat node', recurring, ['a'], 2, 'a', 1021, 'NODE_RESPONDED_ALREADY']
  ]
  for (const [name, terms, delivered, interval, nodeId, acceptedAtS, expected] of rows) {
    t.is(checkReplicatedResponse(terms, delivered, { interval, nodeId, acceptedAtS }), expected, name)
  }
})
