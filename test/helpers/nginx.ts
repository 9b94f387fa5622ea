// The nginx config that docs/nginx-mkvcast.conf documents, made runnable on the test's hosts.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { onPath } from './ingest.js';

const DOC = new URL('../../../docs/nginx-mkvcast.conf', import.meta.url);

export interface NginxPlace {
  /** A private directory: the cache, logs and nginx's temporary files go there. */
  dir: string;
  /** address:port nginx listens on. */
  listen: string;
  /** The two edge hosts, address:port (one host twice is fine). */
  edges: [string, string];
}

/** Debian's nginx (package nginx), on PATH or where Debian puts it; null when there is none. */
export function nginxBin(): string | null {
  return onPath('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : null);
}

/** A whole nginx.conf whose http block is docs/nginx-mkvcast.conf with this run's addresses and paths. */
export function nginxCacheConfig(place: NginxPlace): string {
  let doc = readFileSync(DOC, 'utf8');
  const swap = (from: string, to: string): void => {
    assert.ok(doc.includes(from), `docs/nginx-mkvcast.conf no longer has "${from}"`);
    doc = doc.replaceAll(from, to);
  };
  swap('server 10.0.0.21:8080', `server ${place.edges[0]}`);
  swap('server 10.0.0.22:8080', `server ${place.edges[1]}`);
  swap('listen 80;', `listen ${place.listen};`);
  swap('/var/cache/nginx/mkvcast', path.join(place.dir, 'cache'));
  swap('/var/log/nginx/mkvcast-upstream.log', path.join(place.dir, 'upstream.log'));
  // As root, nginx's workers would otherwise be "nobody", who cannot write to a private
  // temporary directory (run as anyone else, nginx ignores the line with a warning).
  return `user root;
worker_processes 1;
pid ${path.join(place.dir, 'nginx.pid')};
events { worker_connections 4096; }
http {
  client_body_temp_path ${path.join(place.dir, 'client_temp')};
  proxy_temp_path ${path.join(place.dir, 'proxy_temp')};
  fastcgi_temp_path ${path.join(place.dir, 'fastcgi_temp')};
  uwsgi_temp_path ${path.join(place.dir, 'uwsgi_temp')};
  scgi_temp_path ${path.join(place.dir, 'scgi_temp')};
${doc}
}
`;
}
