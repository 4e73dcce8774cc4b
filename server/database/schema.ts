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

export interface Database {
  users: UsersTable
}
