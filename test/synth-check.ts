/**
 * `cdk synth` with real bundling: cargo-lambda-cdk builds every Rust function with cargo lambda,
 * and this checks that each Lambda's code asset holds a `bootstrap` that is an arm64 (aarch64)
 * ELF executable. Run by `make test` after the unit tests; it prints one result line per function.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const OUT = path.join(ROOT, 'cdk.out');
const EM_AARCH64 = 183;

execFileSync('npx', ['cdk', 'synth', '--quiet', '--output', OUT], { cwd: ROOT, stdio: 'inherit' });

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
    }
    const size = bootstrap && fs.existsSync(bootstrap) ? `${(fs.statSync(bootstrap).size / 1e6).toFixed(1)} MB` : '-';
    console.log(`synth-check: ${id}: ${verdict} (${size})`);
    if (verdict === 'ok') passed++;
    else failed++;
  }
}
if (passed + failed === 0) failed++;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
