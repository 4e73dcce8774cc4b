import type { ColumnType, Generated } from 'kysely'

// Insert may leave it out: the column's default (now()) fills it.
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>

export interface UsersTable {
  id: Generated<string>
  email: string
  display_name: string
  created_at: Timestamp
  last_seen_at: NullableTimestamp
  /** Off: this person sends no read receipts and sees none. */
  read_receipts: Generated<boolean>
  /** The first successful sign-in; null for an address someone added that never signed in. */
  verified_at: NullableTimestamp
  /** The account was erased: its row stays as "Deleted account" so its messages keep a sender. */
  deleted_at: NullableTimestamp
}

export type ConversationKind = 'direct' | 'room'
export type MemberRole = 'owner' | 'admin' | 'member'
/** 'invited': added to a direct conversation by someone they have not accepted yet. */
export type MemberState = 'active' | 'invited' | 'blocked'

export interface ConversationsTable {
  id: Generated<string>
  kind: ConversationKind
  direct_key: string | null
  created_at: Timestamp
  last_seq: Generated<number>
  last_message_at: NullableTimestamp
  name: string | null
  topic: string | null
  visibility: 'public' | 'private' | null
  member_count: Generated<number>
  members_can_invite: Generated<boolean>
  created_by: string | null
  room_mentions: Generated<boolean>
}

export interface ConversationMembersTable {
  conversation_id: string
  user_id: string
  joined_at: Timestamp
  read_seq: Generated<number>
  read_at: NullableTimestamp
  role: Generated<MemberRole>
  muted: Generated<boolean>
  state: Generated<MemberState>
}

export interface MessagesTable {
  id: string
  conversation_id: string
  seq: number
  sender_id: string
  client_id: string
  body: string
  created_at: ColumnType<Date, Date | string, Date | string>
  edited_at: NullableTimestamp
  deleted_at: NullableTimestamp
  deleted_by: string | null
  reply_to: string | null
  mentions: Generated<string[]>
  mentions_room: Generated<boolean>
}

/** A body a message had before an edit or its deletion: for moderation, never answered to members. */
export interface MessageVersionsTable {
  message_id: string
  conversation_id: string
  body: string
  replaced_at: Timestamp
  replaced_by: string | null
  message_created_at: ColumnType<Date, Date | string, Date | string>
}

export interface MessageReactionsTable {
  message_id: string
  conversation_id: string
  user_id: string
  emoji: string
  created_at: Timestamp
  message_created_at: ColumnType<Date, Date | string, Date | string>
}

/** A change members see that is not a message: it takes the conversation's next seq all the same. */
export interface ConversationEventsTable {
  conversation_id: string
  seq: number
  kind: string
  actor_id: string | null
  command_id: string | null
  message_id: ColumnType<string | null, string | null | undefined, string | null>
  message_created_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
  payload: ColumnType<Record<string, unknown>, string, string>
  created_at: Timestamp
}

/** A person's authenticator app: the secret encrypted at rest, on once confirmed. */
export interface UserTotpTable {
  user_id: string
  secret: string
  created_at: Timestamp
  enabled_at: NullableTimestamp
  last_step: ColumnType<number | null, number | null | undefined, number | null>
}

/** Single-use recovery codes, as keyed hashes. */
export interface TotpRecoveryCodesTable {
  user_id: string
  code_hash: string
  used_at: NullableTimestamp
}

export interface Database {
  users: UsersTable
  conversations: ConversationsTable
  conversation_members: ConversationMembersTable
  messages: MessagesTable
  conversation_events: ConversationEventsTable
  message_versions: MessageVersionsTable
  message_reactions: MessageReactionsTable
  user_totp: UserTotpTable
  totp_recovery_codes: TotpRecoveryCodesTable
}
