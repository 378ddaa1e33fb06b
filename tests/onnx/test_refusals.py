"""Bad input for export and the ONNX backend: one line of our own each, nothing crashes."""
from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'tha4bridge[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'tha4bridge[onnx]')")
from onnx import TensorProto, helper
from typer.testing import CliRunner

from tests.shared import LAMBDA_00, needs_fixtures
from tests.student.util import writable_copy
from tha4bridge.cli import app
from tha4bridge.load import load_poser
from tha4bridge.onnx.backend import OnnxPoser
from tha4bridge.onnx.runtime import ExportError
from tha4bridge.student import ModelFileError


def one_line(e: Exception) -> str:
    text = str(e)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def test_corrupt_onnx_file(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf graph" * 50)
    with pytest.raises(ExportError) as e:
        OnnxPoser(bad, providers="cpu")
    assert one_line(e.value).startswith(f"{bad}: not a readable ONNX model")


def test_foreign_onnx_graph(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "foreign.onnx"
    onnx.save(model, path)
    with pytest.raises(ExportError) as e:
        OnnxPoser(path, providers="cpu")
    assert "not a tha4bridge student graph" in one_line(e.value)


def test_missing_and_unknown_providers(tmp_path):
    path = tmp_path / "any.onnx"
    path.write_bytes(b"")  # never opened: the provider list is refused first
    with pytest.raises(ExportError) as e:
        OnnxPoser(path, providers="metal")
    assert "unknown provider metal" in one_line(e.value)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])), path)
    with pytest.raises(ExportError) as e:
        OnnxPoser(path, providers="dml")  # DirectML exists only in Windows builds of onnxruntime
    assert "--providers dml: none is usable here (dml: not in this onnxruntime build)" in one_line(e.value)


def test_a_missing_onnx_file_and_the_demo(tmp_path):
    with pytest.raises(ExportError) as e:
        OnnxPoser(tmp_path / "nope.onnx", providers="cpu")
    assert one_line(e.value) == f"{tmp_path / 'nope.onnx'}: missing"
    with pytest.raises(ValueError) as e:
        load_poser("demo", backend="onnxruntime")
    assert "demo character is not one" in one_line(e.value)
    with pytest.raises(ValueError) as e:
        load_poser("demo", backend="tensorflow")
    assert one_line(e.value) == "--backend must be torch or onnxruntime, got 'tensorflow'"


@needs_fixtures
def test_a_bad_student_folder_is_refused_before_any_export(tmp_path):
    folder = writable_copy(tmp_path)
    body = folder / "body_morpher.pt"
    body.write_bytes(body.read_bytes()[:1000])  # truncated
    with pytest.raises(ModelFileError) as e:
        load_poser(folder, backend="onnxruntime", providers="cpu")
    assert one_line(e.value).startswith(f"{body}:")
    r = CliRunner().invoke(app, ["export", "--student", str(folder), "--onnx", str(tmp_path / "x.onnx")])
    assert r.exit_code == 2 and r.output.strip().startswith(f"error: {body}:") and r.output.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()


def test_export_refuses_the_demo_and_bad_regions_in_one_line(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["export", "--student", "demo", "--onnx", str(tmp_path / "d.onnx")])
    assert r.exit_code == 2 and "not a student network" in r.output and r.output.count("\n") == 1
    for region, words in [("face", "four whole numbers"), ("400,400,200,200", "does not fit inside")]:
        r = runner.invoke(app, ["export", "--student", str(LAMBDA_00), "--onnx", str(tmp_path / "r.onnx"),
                                "--region", region])
        assert r.exit_code == 2 and words in r.output and r.output.count("\n") == 1, r.output
    r = runner.invoke(app, ["export", "--student", str(LAMBDA_00), "--onnx", str(tmp_path / "r.onnx"),
                            "--region", "0,0,64,64", "--plain"])
    assert r.exit_code == 2 and "have no crop" in r.output and r.output.count("\n") == 1
    assert not (tmp_path / "r.onnx").exists()
