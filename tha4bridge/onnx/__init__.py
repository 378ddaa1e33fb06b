"""The student as an ONNX graph and an ONNX Runtime backend (optional: `pip install 'tha4bridge[onnx]'`).

    graph.py     the student as one traceable module (reference, or rearranged for a graph runtime)
    export.py    `tha4bridge export`: a folder → a checked .onnx file (protocols/onnx.md)
    backend.py   OnnxPoser: an ONNX Runtime session behind the Poser interface, providers tried in order
    runtime.py   the optional imports and their one-line errors
"""
