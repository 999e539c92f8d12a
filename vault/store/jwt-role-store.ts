import type { Db, Tx } from './db.js';
import { query, sql } from './sql.js';

/** A JWT auth role as stored (services/identity/jwt-auth-service.ts decides what it means). */
export interface JwtRoleRow {
  name: string;
  issuer: string;
  audience: string;
  scopes: string[];
  ttlMs: number;
  boundClaims: Record<string, string[]>;
  boundSubject: string | null;
  requiredClaims: string[];
  jwksUrl: string | null;
  /** A JWKS document (JSON text) given inline. */
  jwks: string | null;
  /** A PEM public key given inline. */
  publicKey: string | null;
  createdAt: number;
  createdBy: string;
}

const COLS =
  'name, issuer, audience, scopes, ttl_ms, bound_claims, bound_subject, required_claims, jwks_url, jwks, public_key, created_at, created_by';

const toRole = (r: any): JwtRoleRow => ({
  name: r.name,
  issuer: r.issuer,
  audience: r.audience,
  scopes: JSON.parse(r.scopes),
  ttlMs: Number(r.ttl_ms),
  boundClaims: JSON.parse(r.bound_claims),
  boundSubject: r.bound_subject ?? null,
  requiredClaims: JSON.parse(r.required_claims),
  jwksUrl: r.jwks_url ?? null,
  jwks: r.jwks ?? null,
  publicKey: r.public_key ?? null,
  createdAt: Number(r.created_at),
  createdBy: r.created_by,
});

const Q = {
  insert: query(`insert into jwt_roles (${COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (name) do nothing`),
  get: query(`select ${COLS} from jwt_roles where name = ?`),
  list: query(`select ${COLS} from jwt_roles order by name collate_c`),
  delete: query('delete from jwt_roles where name = ?'),
};

export function jwtRoleStoreFactory(db: Db) {
  return {
    /** False when a role of that name exists (nothing written). */
    async insert(r: JwtRoleRow, tx: Tx): Promise<boolean> {
      const n = await sql(db, tx).run(
        Q.insert,
        r.name,
        r.issuer,
        r.audience,
        JSON.stringify(r.scopes),
        r.ttlMs,
        JSON.stringify(r.boundClaims),
        r.boundSubject,
        JSON.stringify(r.requiredClaims),
        r.jwksUrl,
        r.jwks,
        r.publicKey,
        r.createdAt,
        r.createdBy,
      );
      return n > 0;
    },
    async get(name: string, tx?: Tx): Promise<JwtRoleRow | null> {
      const r = await sql(db, tx).get(Q.get, name);
      return r ? toRole(r) : null;
    },
    async list(tx?: Tx): Promise<JwtRoleRow[]> {
      return (await sql(db, tx).all(Q.list)).map(toRole);
    },
    async delete(name: string, tx: Tx): Promise<boolean> {
      return (await sql(db, tx).run(Q.delete, name)) > 0;
    },
  };
}
export type JwtRoleStore = ReturnType<typeof jwtRoleStoreFactory>;
