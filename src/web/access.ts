/**
 * Who may talk to the dashboard. Bound to loopback (the default) it answers only requests whose Host header
 * names a loopback address or localhost (so a web page on another origin cannot reach it by DNS rebinding).
 * With a token, every request must carry it: `Authorization: Bearer <token>`, the `tlab_dashboard` cookie, or
 * `?token=` on the first page load, which sets the cookie (HttpOnly, SameSite=Strict) and redirects to the
 * same URL without it.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const TOKEN_COOKIE = 'tlab_dashboard';

export interface AccessPolicy {
  /** The server is bound to a loopback address: check the Host header. */
  loopback: boolean;
  token?: string;
}

export type AccessDecision =
  | { ok: true }
  | { ok: false; status: 401 | 403; message: string }
  | { ok: false; status: 303; location: string; cookie: string };

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The host part of a Host header ("127.0.0.1:8080" → "127.0.0.1", "[::1]:80" → "::1"). */
function hostName(header: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(header);
  if (m) return m[1];
  return header.replace(/:\d+$/, '');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export function checkAccess(
  policy: AccessPolicy,
  method: string,
  rawUrl: string,
  headers: IncomingHttpHeaders,
): AccessDecision {
  if (policy.loopback) {
    const host = headers.host ?? '';
    if (!isLoopbackHost(hostName(host)))
      return {
        ok: false,
        status: 403,
        message: `Host '${host}' is not a loopback name; open the dashboard at 127.0.0.1`,
      };
  }
  const token = policy.token;
  if (!token) return { ok: true };
  const auth = headers.authorization;
  if (auth?.startsWith('Bearer ') && same(auth.slice(7), token)) return { ok: true };
  const cookie = cookieValue(headers.cookie, TOKEN_COOKIE);
  if (cookie !== undefined && same(cookie, token)) return { ok: true };
  const url = new URL(rawUrl, 'http://dashboard');
  const given = url.searchParams.get('token');
  if (given !== null && same(given, token) && method === 'GET') {
    url.searchParams.delete('token');
    return {
      ok: false,
      status: 303,
      location: `${url.pathname}${url.search}`,
      cookie: `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
    };
  }
  return {
    ok: false,
    status: 401,
    message: 'this dashboard needs its token: open the URL it printed (…/?token=…)',
  };
}
