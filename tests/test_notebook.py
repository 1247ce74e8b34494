"""docs/demo.ipynb runs from top to bottom in a real Jupyter kernel (nbclient), as a user
opens it from docs/ of a checkout."""

import os
import shutil

import nbformat
import pytest
from helpers import ROOT
from nbclient import NotebookClient


@pytest.mark.slow
def test_demo_notebook_runs(tmp_path):
    # A checkout of its own (links to the real folders), so the notebook's result.mp4 lands
    # in tmp_path.
    for name in ("modules", "example", "tests"):
        os.symlink(ROOT / name, tmp_path / name)
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "demo.ipynb", tmp_path / "docs")
    notebook = nbformat.read(tmp_path / "docs" / "demo.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path / "docs")}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "24 frames of (256, 256, 3) uint8" in text
    assert any("image/gif" in out.get("data", {}) for out in outputs)
    assert (tmp_path / "docs" / "demo-result.mp4").stat().st_size > 0
