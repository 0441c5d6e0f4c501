import type * as G from '../protocol/generated.ts'

/** One container run inside a job (inframind.v1.ReceiptStep as generated from receipt.proto). */
export type ReceiptStep = G.ReceiptStep

export type ReceiptStatus = 'success' | 'failed'

/** inframind.v1.Receipt, with the status narrowed to the two values decodeReceipt accepts. */
export interface Receipt extends Omit<G.Receipt, 'status'> {
  status: ReceiptStatus
}
