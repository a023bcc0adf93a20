"""Writes qa/resources/countries.tsv: the world's countries and territories by their Chinese names, from iso-codes.

Run once where Debian's ``iso-codes`` package is installed (``python -m training.countries``); the output is
committed, so neither the service nor CI needs the package. The names are ISO 3166-1's, translated by the
iso-codes project (zh_CN); no question set chose any of them.
"""

from __future__ import annotations

import gettext
import json
import sys
from pathlib import Path

ISO_CODES = Path("/usr/share/iso-codes/json/iso_3166-1.json")
LOCALES = Path("/usr/share/locale")
OUT = Path(__file__).resolve().parent.parent / "qa" / "resources" / "countries.tsv"
# China itself is no foreign place (a Chinese report speaks of it without naming it), and Hong Kong, Macao and
# Taiwan are in divisions.tsv already.
LEFT_OUT = {"CN", "HK", "MO", "TW"}
# The zh_CN translation spells a few names as Taiwan does or with a typo; the spelling of the PRC's Ministry of
# Foreign Affairs (fmprc.gov.cn country pages) is added beside it. Checkable one by one, not chosen on any set.
MAINLAND = {
    "BD": "孟加拉国",
    "BW": "博茨瓦纳",
    "GT": "危地马拉",
    "KG": "吉尔吉斯斯坦",
    "KH": "柬埔寨",
    "LC": "圣卢西亚",
    "MT": "马耳他",
    "SM": "圣马力诺",
    "VA": "梵蒂冈",
}
HEADER = """\
# Countries and territories other than China: ISO 3166-1 alpha-2 code, then every Chinese name a text may use.
# From Debian's iso-codes {version} (LGPL-2.1-or-later, https://salsa.debian.org/iso-codes-team/iso-codes):
# iso_3166-1.json with its zh_CN translation (name, common name, official name), plus the PRC Foreign Ministry's
# spelling where the translation differs (training/countries.py, MAINLAND). Written by `python -m training.countries`.
# Not fitted on anything: a list of official names.
"""


def rows() -> list[tuple[str, list[str]]]:
    zh = gettext.translation("iso_3166-1", localedir=str(LOCALES), languages=["zh_CN"])
    out = []
    for country in json.loads(ISO_CODES.read_text(encoding="utf-8"))["3166-1"]:
        code = country["alpha_2"]
        if code in LEFT_OUT:
            continue
        english = [country.get(k) for k in ("name", "common_name", "official_name")]
        names = [zh.gettext(e) for e in english if e]
        names = [n for n in names if n and not n.isascii()]
        if code in MAINLAND:
            names.insert(0, MAINLAND[code])
        if names:
            out.append((code, list(dict.fromkeys(names))))
    return out


def main() -> int:
    version = "unknown"
    changelog = Path("/usr/share/doc/iso-codes/changelog.Debian.gz")
    if changelog.exists():
        import gzip

        version = gzip.decompress(changelog.read_bytes()).decode().split("(", 1)[1].split(")", 1)[0]
    lines = [HEADER.format(version=version)]
    lines += [f"{code}\t{chr(9).join(names)}\n" for code, names in rows()]
    OUT.write_text("".join(lines), encoding="utf-8")
    print(f"wrote {OUT} ({len(lines) - 1} countries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
