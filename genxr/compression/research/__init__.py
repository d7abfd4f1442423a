"""The compression research harness, kept apart from the folding library the way torchcfm keeps
its library and its experiments apart: a model zoo (:mod:`.models`) with its checkpoint format
(:mod:`.checkpoint`), synthetic data (:mod:`.data`), training (:mod:`.train`), the paper's sweep
(:mod:`.sweep`) and its report (:mod:`.report`). The library (:mod:`genxr.compression`) never
imports from here."""
