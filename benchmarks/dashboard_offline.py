"""Make asv's published dashboard open on a machine without internet.

    pip download --no-deps asv==0.5.1 -d /tmp/asv-vendor && tar xzf /tmp/asv-vendor/asv-0.5.1.tar.gz -C /tmp/asv-vendor
    python benchmarks/dashboard_offline.py /tmp/asv-vendor/asv-0.5.1/asv/www/vendor
    python -m http.server 8080 --bind 127.0.0.1 --directory .asv/html-offline

``asv publish`` writes a page that loads jQuery, Flot, Bootstrap and three small plugins
from public CDNs; without them it shows only "Can not determine continental origin of
swallow". asv 0.5.1 shipped the same libraries in its source distribution
(``asv/www/vendor``). This copies ``.asv/html`` to ``.asv/html-offline``, puts those files
beside it and points the page's CDN references at them (the CDN integrity hashes go: the
local files are asv's own copies, Bootstrap 3.1.0 for 3.1.1).
"""

import argparse
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# file name in the CDN address -> asv 0.5.1's vendored copy
VENDORED = {
    "jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "jquery.flot.min.js": "jquery.flot-0.8.3.min.js",
    "jquery.flot.time.min.js": "jquery.flot-0.8.3.time.min.js",
    "jquery.flot.selection.min.js": "jquery.flot-0.8.3.selection.min.js",
    "jquery.flot.categories.min.js": "jquery.flot-0.8.3.categories.min.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable.js",
    "md5.min.js": "md5.js",
    "bootstrap.min.js": "bootstrap-3.1.0.min.js",
    "bootstrap.min.css": "bootstrap-3.1.0.min.css",
}
CDN_TAG = re.compile(r'(?:src|href)="(https://[^"]+)"[^>]*>')


def localize(html):
    """``html`` with every CDN script and stylesheet pointed at ``vendor/``; the names of
    CDN files it does not know, which stay as they were, come back as a list."""
    unknown = []

    def swap(match):
        tag, url = match.group(0), match.group(1)
        name = url.rsplit("/", 1)[-1]
        if not (name.endswith(".js") or name.endswith(".css")):
            return tag  # a link to a web page, not a library
        if name not in VENDORED:
            unknown.append(name)
            return tag
        tag = tag.replace(url, "vendor/" + VENDORED[name])
        return re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)

    return CDN_TAG.sub(swap, html), unknown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vendor", type=Path, help="asv 0.5.1's asv/www/vendor folder")
    parser.add_argument("--html", type=Path, default=REPO / ".asv" / "html")
    parser.add_argument("--out", type=Path, default=REPO / ".asv" / "html-offline")
    args = parser.parse_args(argv)
    missing = sorted(set(VENDORED.values()) - {p.name for p in args.vendor.glob("*")})
    if missing:
        parser.error(f"{args.vendor} lacks {', '.join(missing)}")
    if not (args.html / "index.html").is_file():
        parser.error(f"no dashboard in {args.html}: run `asv publish` first")
    html, unknown = localize((args.html / "index.html").read_text())
    if unknown:
        parser.error(f"the dashboard loads CDN files this script does not know: {unknown}")
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.html, args.out)
    shutil.copytree(args.vendor, args.out / "vendor")
    (args.out / "index.html").write_text(html)
    print(f"wrote {args.out}; serve it, e.g. "
          f"python -m http.server 8080 --bind 127.0.0.1 --directory {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
