import pytest

from langadapt.errors import LangadaptError
from langadapt.languages import is_canonical, normalise


@pytest.mark.parametrize(
    ("code", "expected"),
    [("hsb", "hsb_Latn"), ("cs", "ces_Latn"), ("pt_BR", "por_Latn"), ("zh_Hans", "zho_Hans"),
     ("sr_Latn", "srp_Latn"), ("sr", "srp_Cyrl"), ("hsb_Latn", "hsb_Latn"), ("ces-Latn", "ces_Latn")],
)
def test_codes_normalise_to_iso639_3_plus_script(code, expected):
    assert normalise(code) == expected
    assert is_canonical(expected)


def test_unknown_code_says_how_to_fix():
    with pytest.raises(LangadaptError, match="unknown language code 'xx'.*hsb_Latn"):
        normalise("xx")
