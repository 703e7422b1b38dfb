import gc

from guardd.cli import main


def test_status_run_in_this_process_leaves_the_cycle_collector_on(tmp_path, capsys):
    config = tmp_path / "guardd.toml"
    config.write_text(f'[guardd]\nstate_dir = "{tmp_path / "state"}"\n')
    main(["status", "--json", "-c", str(config)])
    assert gc.isenabled()
