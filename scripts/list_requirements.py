"""Print the runtime requirements declared in setup.cfg, one per line (used by setup.sh)."""

import configparser
import pathlib
import sys


def main() -> int:
    cfg = configparser.ConfigParser()
    cfg.read(pathlib.Path(__file__).resolve().parents[1] / 'setup.cfg')
    reqs = [r.strip() for r in cfg['options']['install_requires'].splitlines() if r.strip()]
    extras = cfg['options.extras_require'] if cfg.has_section('options.extras_require') else {}
    for name in ('io',):
        reqs += [r.strip() for r in extras.get(name, '').splitlines() if r.strip()]
    sys.stdout.write('\n'.join(reqs) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
