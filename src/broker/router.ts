import { Command } from '../protocol/commands.js';
import type { Processor } from './context.js';
import { createTopic, groupStatus, listGroups, listTopics } from './processors/admin.js';
import { ack, joinGroup, leaveGroup, nack, pull } from './processors/consume.js';
import { dlqList, dlqPurge, dlqResend } from './processors/dlq.js';
import { messageFind, messageGet } from './processors/lookup.js';
import { send } from './processors/send.js';
import { heartbeat, hello } from './processors/session.js';
import { endTransaction, endTransactionBatch, getTransaction, listTransactions, sendHalf, sendHalfBatch } from './processors/transaction.js';

/** Command code → processor. A code missing here gets UNKNOWN_COMMAND; the connection stays up. */
export const PROCESSORS: ReadonlyMap<number, Processor> = new Map<number, Processor>([
  [Command.HELLO, hello],
  [Command.HEARTBEAT, heartbeat],
  [Command.SEND, send],
  [Command.JOIN_GROUP, joinGroup],
  [Command.LEAVE_GROUP, leaveGroup],
  [Command.PULL, pull],
  [Command.ACK, ack],
  [Command.NACK, nack],
  [Command.CREATE_TOPIC, createTopic],
  [Command.LIST_TOPICS, listTopics],
  [Command.GROUP_STATUS, groupStatus],
  [Command.LIST_GROUPS, listGroups],
  [Command.DLQ_LIST, dlqList],
  [Command.DLQ_RESEND, dlqResend],
  [Command.DLQ_PURGE, dlqPurge],
  [Command.MESSAGE_GET, messageGet],
  [Command.MESSAGE_FIND, messageFind],
  [Command.SEND_HALF, sendHalf],
  [Command.END_TRANSACTION, endTransaction],
  [Command.SEND_HALF_BATCH, sendHalfBatch],
  [Command.END_TRANSACTION_BATCH, endTransactionBatch],
  [Command.LIST_TRANSACTIONS, listTransactions],
  [Command.GET_TRANSACTION, getTransaction],
]);
