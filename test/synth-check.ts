/**
 * `cdk synth` with real bundling: cargo-lambda-cdk builds every Rust function with cargo lambda,
 * and this checks that each Lambda's code asset holds a `bootstrap` that is an arm64 (aarch64)
 * ELF executable needing no glibc symbol newer than Amazon Linux 2023's (2.34: the provided.al2023
 * runtime). Run by `make test` after the unit tests; it prints one result line per function.
 * (`order-local demo --assembly cdk.out` then runs these bootstraps under qemu-aarch64.)
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const OUT = path.join(ROOT, 'cdk.out');
const EM_AARCH64 = 183;
/** The C library of Lambda's provided.al2023 runtime. */
const GLIBC_MAX: [number, number] = [2, 34];

/** The newest GLIBC_x.y symbol version `bootstrap` needs, from its version references. */
function newestGlibc(bootstrap: string): [number, number] | undefined {
  const text = execFileSync('readelf', ['-V', '--wide', bootstrap], { encoding: 'utf8', maxBuffer: 64 << 20 });
  let newest: [number, number] | undefined;
  for (const m of text.matchAll(/GLIBC_(\d+)\.(\d+)/g)) {
    const v: [number, number] = [Number(m[1]), Number(m[2])];
    if (!newest || v[0] > newest[0] || (v[0] === newest[0] && v[1] > newest[1])) newest = v;
  }
  return newest;
}

/**
 * The smoke test's bundles are built without optimisation or link-time optimisation, in 16 code
 * units a crate: the same code, target, linker, C library and instruction set as a deployment's,
 * checked the same way (arm64 ELF, glibc <= 2.34, every function answering the demo's events
 * under qemu-aarch64 -cpu neoverse-n1), for much less of CI's two cores: eight fat-LTO links, each
 * on one core, were half of `make test`, and optimising the dependencies (the SDK crates above
 * all) was two fifths of what was left (docs/benchmarks.md, section 9). `cdk synth` and
 * `cdk deploy` without these variables build the optimised fat-LTO bootstraps that `make bench`
 * measures. SMOKE_BUILD=release keeps the release profile as Cargo.toml has it.
 */
const smokeBuild: NodeJS.ProcessEnv =
  process.env.SMOKE_BUILD === 'release'
    ? {}
    : { CARGO_PROFILE_RELEASE_OPT_LEVEL: '0', CARGO_PROFILE_RELEASE_LTO: 'off', CARGO_PROFILE_RELEASE_CODEGEN_UNITS: '16' };
execFileSync('npx', ['cdk', 'synth', '--quiet', '--output', OUT], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...smokeBuild } });

const templates = fs.readdirSync(OUT).filter((f) => f.endsWith('.template.json'));
let passed = 0;
let failed = 0;
for (const file of templates) {
  const template = JSON.parse(fs.readFileSync(path.join(OUT, file), 'utf8'));
  for (const [id, resource] of Object.entries<any>(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const assetPath: string | undefined = resource.Metadata?.['aws:asset:path'];
    const bootstrap = assetPath ? path.join(OUT, assetPath, 'bootstrap') : '';
    let verdict: string;
    if (!bootstrap || !fs.existsSync(bootstrap)) {
      verdict = `no bootstrap in the asset (${assetPath})`;
    } else {
      const header = Buffer.alloc(20);
      const fd = fs.openSync(bootstrap, 'r');
      fs.readSync(fd, header, 0, 20, 0);
      fs.closeSync(fd);
      const elf = header.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
      const machine = header.readUInt16LE(18);
      verdict = elf && machine === EM_AARCH64 ? 'ok' : `not an arm64 ELF (elf=${elf}, e_machine=${machine})`;
      if (verdict === 'ok') {
        const glibc = newestGlibc(bootstrap);
        const tooNew = glibc && (glibc[0] > GLIBC_MAX[0] || (glibc[0] === GLIBC_MAX[0] && glibc[1] > GLIBC_MAX[1]));
        verdict = tooNew
          ? `needs GLIBC_${glibc![0]}.${glibc![1]}, newer than Lambda's ${GLIBC_MAX.join('.')}: build for an older glibc (cargo lambda's zig linker takes a target like aarch64-unknown-linux-gnu.2.34)`
          : `ok, arm64, newest glibc symbol ${glibc ? `GLIBC_${glibc.join('.')}` : 'none'}`;
      }
    }
    const size = bootstrap && fs.existsSync(bootstrap) ? `${(fs.statSync(bootstrap).size / 1e6).toFixed(1)} MB` : '-';
    console.log(`synth-check: ${id}: ${verdict} (${size})`);
    if (verdict.startsWith('ok')) passed++;
    else failed++;
  }
}
if (passed + failed === 0) failed++;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
