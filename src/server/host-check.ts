// The Host check against DNS rebinding. A server bound to a loopback address can only be reached from this
// machine, but a web page the user opens can still send it requests: the page's site points its DNS name
// at 127.0.0.1 (DNS rebinding), and the browser then sends requests whose Host header is that site's name.
// So, as Jupyter and Ollama do, a server bound to loopback answers only requests whose Host names a
// loopback address or `localhost` (and *.localhost, which browsers resolve to loopback themselves);
// --allowed-hosts adds names. A server bound to another address is meant to be reached by other names:
// there is no Host check, and the start-up line warns when no API key guards it.

/** True for 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) and the name localhost. */
export function isLoopbackName(host: string): boolean {
  const h = normalize(host);
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** Lower case, no brackets around an IPv6 address, no trailing dot. */
function normalize(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** The host part of a Host header ("name:port", "[v6]:port", "name"); undefined when it is malformed. */
export function hostOfHeader(header: string): string | undefined {
  const v = header.trim();
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0) return undefined;
    const rest = v.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return normalize(v.slice(0, end + 1));
  }
  const colon = v.indexOf(':');
  if (colon >= 0 && !/^:\d{1,5}$/.test(v.slice(colon))) return undefined;
  const name = colon >= 0 ? v.slice(0, colon) : v;
  return name === '' ? undefined : normalize(name);
}

/**
 * Decides which Host headers a server bound to `bindHost` answers. `allowed`: extra names from
 * --allowed-hosts; "*" turns the check off, ".example.com" allows that domain and its subdomains.
 */
export class HostCheck {
  readonly active: boolean;
  private readonly names = new Set<string>();
  private readonly suffixes: string[] = [];

  constructor(bindHost: string, allowed: readonly string[] = []) {
    for (const a of allowed) {
      const h = normalize(a);
      if (h === '') continue;
      if (h.startsWith('.')) this.suffixes.push(h);
      else this.names.add(h);
    }
    this.active = isLoopbackName(bindHost) && !this.names.has('*');
  }

  /** Whether a request with this Host header may be answered (no header: HTTP/1.0, not a browser). */
  allows(header: string | undefined): boolean {
    if (!this.active || header === undefined) return true;
    const h = hostOfHeader(header);
    if (h === undefined) return false;
    if (isLoopbackName(h) || this.names.has(h)) return true;
    return this.suffixes.some((s) => h.endsWith(s) || h === s.slice(1));
  }
}

/** The start-up warning for a server reachable from other machines without an API key, or undefined. */
export function exposureWarning(bindHost: string, hasKey: boolean): string | undefined {
  if (hasKey || isLoopbackName(bindHost)) return undefined;
  return (
    `listening on ${bindHost} without an API key: anyone who can reach this address can use the model ` +
    '(give --api-key-file FILE, or --host 127.0.0.1 to stay on this machine)'
  );
}
