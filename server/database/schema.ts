import type { ColumnType, Generated } from 'kysely'

// Insert may leave it out: the column's default (now()) fills it.
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>

export interface UsersTable {
  id: Generated<string>
  email: string
  display_name: string
  created_at: Timestamp
  last_seen_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
  /** Off: this person sends no read receipts and sees none. */
  read_receipts: Generated<boolean>
}

type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>

export interface ConversationsTable {
  id: Generated<string>
  kind: 'direct' | 'group'
  direct_key: string | null
  created_at: Timestamp
  last_seq: Generated<number>
  last_message_at: NullableTimestamp
}

export interface ConversationMembersTable {
  conversation_id: string
  user_id: string
  joined_at: Timestamp
  read_seq: Generated<number>
  read_at: NullableTimestamp
}

export interface MessagesTable {
  id: string
  conversation_id: string
  seq: number
  sender_id: string
  client_id: string
  body: string
  created_at: ColumnType<Date, Date | string, Date | string>
}

export interface Database {
  users: UsersTable
  conversations: ConversationsTable
  conversation_members: ConversationMembersTable
  messages: MessagesTable
}
