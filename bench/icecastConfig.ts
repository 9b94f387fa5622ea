// Finding Icecast and ffmpeg's icecast:// output, and writing a minimal icecast.xml for one run.
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';

const BINARY_NAMES = ['icecast2', 'icecast'];
/** Debian installs its web files under icecast2/, other distributions under icecast/. */
const SHARE_DIRS = ['/usr/share/icecast2', '/usr/share/icecast', '/usr/local/share/icecast'];

export type Support = { ok: true; bin: string; shareDir: string } | { ok: false; reason: string };

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findBinary(explicit: string | null): string | null {
  if (explicit !== null) return executable(explicit) ? explicit : null;
  const dirs = (process.env['PATH'] ?? '').split(':').concat(['/usr/bin', '/usr/local/bin', '/usr/sbin']);
  for (const name of BINARY_NAMES) {
    for (const dir of dirs) {
      if (dir !== '' && executable(path.join(dir, name))) return path.join(dir, name);
    }
  }
  return null;
}

/** Whether this ffmpeg can publish with `-f … icecast://` (its output protocols list it). */
function ffmpegHasIcecast(ffmpeg: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(ffmpeg, ['-hide_banner', '-protocols'], { timeout: 10_000 }, (err, stdout) => {
      if (err !== null) return resolve(false);
      const output = stdout.split(/^Output:/m)[1] ?? '';
      resolve(/^\s*icecast\s*$/m.test(output));
    });
  });
}

export async function icecastSupport(ffmpeg: string, explicitBin: string | null): Promise<Support> {
  const bin = findBinary(explicitBin);
  if (bin === null) {
    return { ok: false, reason: `no Icecast binary (${explicitBin ?? BINARY_NAMES.join(' or ')}) found; install it with apt-get install icecast2` };
  }
  const shareDir = SHARE_DIRS.find((d) => executable(path.join(d, 'web')));
  if (shareDir === undefined) return { ok: false, reason: `Icecast's web files (status-json.xsl) not found in ${SHARE_DIRS.join(', ')}` };
  if (!(await ffmpegHasIcecast(ffmpeg))) return { ok: false, reason: `${ffmpeg} has no icecast output protocol` };
  return { ok: true, bin, shareDir };
}

export interface RunAs {
  user: string;
  group: string;
  uid: number;
  gid: number;
}

/**
 * Icecast refuses to run as root unless <changeowner> names a user to switch to after it has
 * bound its port. As root, switch to `nobody` (and its primary group); otherwise run as we are.
 */
export function runAs(): RunAs | null {
  if (process.getuid?.() !== 0) return null;
  const passwd = readFileSync('/etc/passwd', 'utf8');
  const entry = /^nobody:[^:]*:(\d+):(\d+):/m.exec(passwd);
  const uid = entry === null ? 65534 : Number(entry[1]);
  const gid = entry === null ? 65534 : Number(entry[2]);
  const groups = readFileSync('/etc/group', 'utf8');
  const group = new RegExp(`^([^:]+):[^:]*:${gid}:`, 'm').exec(groups)?.[1] ?? 'nogroup';
  return { user: 'nobody', group, uid, gid };
}

export interface ConfigOptions {
  port: number;
  password: string;
  /** Listener slots; Icecast answers 403 past it. */
  clients: number;
  dir: string;
  logDir: string;
  shareDir: string;
  runAs: RunAs | null;
}

/** A minimal icecast.xml: loopback only, no chroot, logs in our temporary directory. */
export function icecastXml(o: ConfigOptions): string {
  const owner = o.runAs === null ? '' : `<changeowner><user>${o.runAs.user}</user><group>${o.runAs.group}</group></changeowner>`;
  // queue-size and burst-size are Icecast's own defaults (512 KiB, 64 KiB): the server as shipped.
  return `<icecast>
  <location>mkvcast bench</location>
  <admin>bench@localhost</admin>
  <hostname>127.0.0.1</hostname>
  <limits>
    <clients>${o.clients}</clients>
    <sources>2</sources>
    <queue-size>524288</queue-size>
    <burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
  </limits>
  <authentication>
    <source-password>${o.password}</source-password>
    <relay-password>${o.password}</relay-password>
    <admin-user>admin</admin-user>
    <admin-password>${o.password}</admin-password>
  </authentication>
  <listen-socket>
    <port>${o.port}</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>${o.dir}</basedir>
    <logdir>${o.logDir}</logdir>
    <webroot>${o.shareDir}/web</webroot>
    <adminroot>${o.shareDir}/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog>
    <errorlog>error.log</errorlog>
    <loglevel>2</loglevel>
  </logging>
  <security>
    <chroot>0</chroot>
    ${owner}
  </security>
</icecast>
`;
}
