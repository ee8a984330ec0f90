"""Headers that astropy's FITS-standard verification would pass, decided from the raw cards.

``HDUList.verify`` builds a ``Card`` object for every card and checks them one by one: on a
delivery of small files it is over a third of the validator's time.  :func:`clean_headers`
answers "would astropy report anything?" from the header bytes the structure scan
(:mod:`phangs_products.fitsscan`) already read, with one regular-expression pass per header
and a few list comparisons.  It is a sufficient test, not a full one: ``True`` means astropy
would report nothing; ``False`` means "ask astropy", which then names each violation in
its own words.  So clean files skip ``verify`` and a dirty file gets the same problems as
before.

What a header must be for ``True``, following the FITS standard (version 4.0, sections 4.1
and 4.2) as astropy checks it:

* every card is commentary (``COMMENT``, ``HISTORY``, blank keyword) or a value card with an
  upper-case keyword of ``A-Z 0-9 _ -``, ``= `` in columns 9-10 and a fixed- or free-format
  value (a string, ``T``/``F``, an integer or real number with an upper-case exponent, a
  complex pair, or nothing) followed by nothing or a ``/`` comment;
* the mandatory keywords in their places: ``SIMPLE``/``XTENSION``, ``BITPIX``, ``NAXIS``,
  ``NAXIS1`` ... ``NAXISn``; then ``PCOUNT`` and ``GCOUNT`` in extensions and ``TFIELDS`` in
  tables; ``EXTEND`` (if present) right after the axes, and ``EXTEND = T`` when extensions
  follow; no ``NAXISj`` beyond ``NAXIS``;
* ``XTENSION`` is exactly ``IMAGE``, ``BINTABLE`` or ``TABLE``; ``EXTNAME`` is a string.

Long strings (a string ending in ``&`` continued on ``CONTINUE`` cards) are clean when no piece
holds a quote.  Headers with anything rarer (``HIERARCH`` or record-valued cards,
``BLANK``, random groups, tile-compressed images) are left to astropy.  The values of the
mandatory keywords (``BITPIX`` in the allowed set, ``NAXISn >= 0``, ``GCOUNT = 1``, every
``TFORMn`` present, ...) were already checked by the scan.
"""

from __future__ import annotations

import re

from phangs_products.fitsscan import CARD, FitsLayout, HduLayout, card_lines, parse_value

__all__ = ["clean_headers"]

# The value grammar of the FITS standard (section 4.2), as astropy applies it to the text
# after "= " (columns 11-80): a string may hold doubled quotes and ends at a quote followed
# by a blank, a "/" or the end of the card; exponents are upper case.
_NUMBER = rb"[+-]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[DE][+-]?[0-9]+)?"
_STRING = rb"'(?:[ -~]+?|''|) *?'(?=$|/| )"
_VALUE = rb"(?:" + _STRING + rb"|[TF]|" + _NUMBER + rb"|\( *" + _NUMBER + rb" *, *" + _NUMBER
_VALUE += rb" *\))"
_COMMENT = rb"(?:/ *(?:[!-~][ -~]*)?)"
_KEY = rb"(?!CONTINUE|HIERARCH)(?=[A-Z0-9_ -]{8}= )[A-Z0-9_-]{1,8} *=  *"
#: One clean card per match, over a header's cards joined by newlines.
_CLEAN_CARD = re.compile(
    rb"^(?:(?:COMMENT |HISTORY |        )[ -~]*|"
    + _KEY
    + _VALUE
    + rb"? *"
    + _COMMENT
    + rb"?|CONTINUE  *'[^'\n]*' *"
    + _COMMENT
    + rb"?)$",
    re.MULTILINE,
)
#: A long string (the OGIP convention astropy reads): a value card whose string ends in "&",
#: continued on CONTINUE cards, each but the last ending in "&"; no quote inside the pieces
#: (their joined value is then a plain string for astropy's check).
_LONG_STRING = re.compile(
    rb"^"
    + _KEY
    + rb"'[^'\n]*&' *"
    + _COMMENT
    + rb"?(?:\nCONTINUE  *'[^'\n]*&' *"
    + _COMMENT
    + rb"?)*\nCONTINUE  *'[^'\n]*' *"
    + _COMMENT
    + rb"?$",
    re.MULTILINE,
)
#: Keywords whose presence leaves the header to astropy (they change how it reads the HDU).
_ASTROPY_ONLY = ("BLANK", "GROUPS", "ZIMAGE")
_EXTENSIONS = ("IMAGE", "BINTABLE", "TABLE")


def clean_headers(layout: FitsLayout) -> bool:
    """Whether astropy's ``HDUList.verify`` would report nothing on these headers.

    Parameters
    ----------
    layout : FitsLayout
        The file's scanned structure.

    Returns
    -------
    bool
        ``True`` only when every header passes the checks listed in the module docstring;
        ``False`` when astropy should verify the file (it may still find nothing).
    """
    extensions = len(layout) > 1
    return all(_clean_hdu(hdu, extensions) for hdu in layout)


def _clean_hdu(hdu: HduLayout, extensions: bool) -> bool:
    values = hdu.raw_values
    if values is None or any(key in values for key in _ASTROPY_ONLY):
        return False
    lines = card_lines(hdu.raw_header, hdu.cards)
    if len(_CLEAN_CARD.findall(lines)) != hdu.cards:
        return False
    continued = lines.count(b"\nCONTINUE")
    if continued and continued != sum(m.count(b"\nCONTINUE") for m in _LONG_STRING.findall(lines)):
        return False
    keys = [lines[at : at + 8].rstrip() for at in range(0, len(lines), CARD + 1)]
    naxis = parse_value(values["NAXIS"])
    axes = [b"NAXIS%d" % n for n in range(1, naxis + 1)]
    if hdu.index == 0:
        mandatory = [b"SIMPLE", b"BITPIX", b"NAXIS", *axes]
    else:
        xtension = parse_value(values["XTENSION"])
        if xtension not in _EXTENSIONS:
            return False
        mandatory = [b"XTENSION", b"BITPIX", b"NAXIS", *axes, b"PCOUNT", b"GCOUNT"]
        if xtension != "IMAGE":
            mandatory.append(b"TFIELDS")
    if keys[: len(mandatory)] != mandatory:
        return False
    if any(k.startswith(b"NAXIS") and len(k) > 5 and k not in axes for k in keys):
        return False
    if hdu.index == 0:
        extend = parse_value(values["EXTEND"]) if "EXTEND" in values else None
        if extend is not None and (keys.index(b"EXTEND") != naxis + 3 or type(extend) is not bool):
            return False
        if extensions and extend is not True:
            return False
    return "EXTNAME" not in values or isinstance(parse_value(values["EXTNAME"]), str)
