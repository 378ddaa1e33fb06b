"""The THA4 student: its network, its fast renderer, its character-model folder, and the poser that joins them.

    siren.py     the SIREN pieces shared by the network, the renderer and the distiller (ω₀, positions, terms)
    network.py   the nn.Modules, the reference forward pass (read beside the paper's Figure 2)
    renderer.py  SirenRenderer: the same arithmetic rearranged for real time (exact and fast modes)
    folder.py    the character-model folder: reading, validating, refusing in one line
    poser.py     StudentPoser: a folder behind the Poser interface

Choosing between a student and the demo character is `tha4bridge.load.load_poser`.
"""
from .folder import (YAML_KEYS, YAML_NAME, CharacterModel, ModelFileError, load_state_dict_file,
                     load_student_modules, read_character_yaml, state_dict_mismatch)
from .network import BodyMorpher, FaceMorpher, StudentArch, paste_face, warp
from .poser import StudentPoser
from .renderer import Levers, SirenRenderer
from .siren import OMEGA0

__all__ = [
    "YAML_KEYS", "YAML_NAME", "CharacterModel", "ModelFileError", "load_state_dict_file", "load_student_modules",
    "read_character_yaml", "state_dict_mismatch", "BodyMorpher", "FaceMorpher", "StudentArch", "paste_face",
    "warp", "StudentPoser", "Levers", "SirenRenderer", "OMEGA0",
]
