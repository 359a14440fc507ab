import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ROOT, template } from './helpers';

function cfnLint(): string {
  const venv = path.join(ROOT, '.venv', 'bin', 'cfn-lint');
  if (fs.existsSync(venv)) return venv;
  const onPath = spawnSync('cfn-lint', ['--version']);
  if (onPath.status === 0) return 'cfn-lint';
  throw new Error('cfn-lint is not installed: run `make setup` (it installs requirements-dev.txt into .venv)');
}

// Protects: the template is valid CloudFormation by AWS's own linter (property types, allowed
// values, references), beyond what CDK's types check.
test('cfn-lint finds nothing in the synthesized template', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfn-lint-'));
  const file = path.join(dir, 'OrderPipeline.template.json');
  fs.writeFileSync(file, JSON.stringify(template().toJSON(), null, 1));
  // W3005 (a DependsOn already implied by a GetAtt) is how CDK wires a function to its role's
  // policy; it is CDK's output, harmless, and not ours to change. Every other check applies.
  const run = spawnSync(cfnLint(), ['--format', 'parseable', '--ignore-checks', 'W3005', '--', file], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  expect({ status: run.status, findings: run.stdout.trim(), errors: run.stderr.trim() }).toEqual({ status: 0, findings: '', errors: '' });
});
