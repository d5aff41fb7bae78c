"""The command line: bad arguments exit 2 and write nothing; outputs are atomic and reproducible."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from linflow import cli, record


def run(*args, check=False):
    return subprocess.run([sys.executable, "-m", "linflow", *map(str, args)], capture_output=True, text=True,
                          check=check)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "dataset.nc"
    assert cli.main(["dataset", "--name", "t", "--kind", "gaussian", "--n", "40", "--N", "8", "--m", "2",
                     "--output", str(path)]) == 0
    return path


def simulate_args(dataset, output, *extra):
    return ["simulate", "--dataset", str(dataset), "--experiment", "t", "--width", "30", "--seed", "1",
            "--init", "gaussian", "--alpha", "0.5", "--output", str(output), *extra]


def test_help_lists_the_flags():
    proc = run("simulate", "--help", check=True)
    for flag in ("--width", "--alpha", "--method", "--sampling", "--loss-threshold"):
        assert flag in proc.stdout


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--width", "-3"], "--width"),
        (["--alpha", "2.5"], "--alpha: expected a number in (0, 2], got 2.5"),
        (["--alpha", "0"], "--alpha: expected a number in (0, 2], got 0"),
        (["--method", "euler"], "invalid choice: 'euler'"),
        (["--method", "gd"], "--step is required"),
        (["--rtol", "nan"], "--rtol"),
        (["--init", "scaled"], "--alpha is not used when init is 'scaled'"),
        (["--init", "scaled", "--alpha", "", "--a", "1", "--b", "1"], "--alpha: expected a number"),
        (["--max-steps", "10"], "--max-steps is not used when method is 'flow'"),
        (["--delta", "2"], "--delta: expected a number in (0, 1), got 2"),
    ],
)
def test_invalid_arguments_exit_2_and_write_nothing(dataset, tmp_path, extra, needle):
    out = tmp_path / "run.nc"
    args = simulate_args(dataset, out)
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_run_record_has_the_schema_and_is_reproducible(dataset, tmp_path):
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    assert cli.main(simulate_args(dataset, a)) == 0
    assert cli.main(simulate_args(dataset, b)) == 0
    ra, rb = record.open_run(a), record.open_run(b)
    xr.testing.assert_identical(ra.drop_attrs(), rb.drop_attrs())  # bit for bit, every variable
    assert ra.attrs["parameters_hash"] == rb.attrs["parameters_hash"]
    assert ra["converged"].dtype == bool and ra["status"].item() == "converged"
    assert set(ra["end_to_end"].dims) == {"input", "output"}
    assert [f for f in tmp_path.iterdir() if f.name.startswith(".")] == []  # no temporary files left


def test_existing_output_is_not_overwritten(dataset, tmp_path):
    out = tmp_path / "run.nc"
    out.write_bytes(b"precious")
    proc = run(*simulate_args(dataset, out))
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert out.read_bytes() == b"precious"
    assert cli.main(simulate_args(dataset, out, "--overwrite")) == 0
    record.open_run(out)


def test_corrupt_input_is_named_with_advice(tmp_path):
    bad = tmp_path / "dataset.nc"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # truncated HDF5 header
    proc = run(*simulate_args(bad, tmp_path / "run.nc"))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "delete it and rerun" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failed_write_leaves_no_file(dataset, tmp_path, monkeypatch):
    """A write that dies half-way leaves neither the output nor its temporary file."""
    out = tmp_path / "run.nc"

    def explode(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", explode)
    with pytest.raises(KeyboardInterrupt):
        cli.main(simulate_args(dataset, out))
    assert list(tmp_path.iterdir()) == []


def test_wishart_sampling_from_the_cli(dataset, tmp_path):
    out = tmp_path / "wide.nc"
    args = simulate_args(dataset, out, "--sampling", "wishart")
    args[args.index("--width") + 1] = "1000000"
    assert cli.main(args) == 0
    ds = record.open_run(out)
    assert ds.attrs["width"] == 1_000_000 and np.isfinite(float(ds.final_distance_fro))
