"""`payswitch risk check`: a good file is summarized, a bad one reported problem by problem with lines."""

from payswitch.cli.main import main


def test_a_good_file_is_summarized(tmp_path, capsys):
    path = tmp_path / "risk.toml"
    path.write_text('version = "r1"\n[[velocity]]\nname = "burst"\nper = "card"\nwindow_seconds = 60\n'
                    'max_count = 3\n[blocklist]\nbins = ["400000"]\n[duplicates]\nwindow_seconds = 300\n')
    assert main(["risk", "check", str(path)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{path}: ok: version r1, 0 limits, 1 velocity rules, blocked: 1 BINs, 0 cards, 0 countries; "
        "duplicates: 300 s")


def test_every_problem_is_named_by_its_line(tmp_path, capsys):
    path = tmp_path / "risk.toml"
    path.write_text('version = "r1"\n[[limits]]\nmerchant = "m_a"\ncurrency = "USD"\nmax_amount_minor = 10.5\n'
                    '[[velocity]]\nname = "burst"\nper = "cards"\nwindow_seconds = 60\nmax_count = 3\n')
    assert main(["risk", "check", str(path)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert f"{path}:5: limits[0].max_amount_minor" in errors[0]
    assert any(line.startswith(f"{path}:8: velocity[0].per") for line in errors)


def test_with_the_configuration_a_limit_may_name_only_its_merchants(tmp_path, capsys):
    switch = tmp_path / "switch.toml"
    switch.write_text('[[merchants]]\nid = "m_acme"\n')
    path = tmp_path / "risk.toml"
    path.write_text('version = "r1"\n[[limits]]\nmerchant = "m_acmee"\ncurrency = "USD"\nmax_amount_minor = 5\n'
                    '[[limits]]\nmerchant = "*"\ncurrency = "USD"\nmax_amount_minor = 9\n')
    assert main(["risk", "check", str(path)]) == 0  # without the configuration any id is a merchant
    capsys.readouterr()
    assert main(["risk", "check", str(path), "--config", str(switch)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:3: limits[0].merchant: names no configured merchant ('m_acmee')"]
    path.write_text('version = "r1"\n[[limits]]\nmerchant = "m_acme"\ncurrency = "USD"\nmax_amount_minor = 5\n')
    assert main(["risk", "check", str(path), "--config", str(switch)]) == 0
