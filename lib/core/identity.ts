/** Who is calling: the account an API key belongs to, and the key's role in it. */
export interface Caller {
  accountId: string;
  keyId: string;
  role: 'owner' | 'admin' | 'member';
}
