"""The OpenXR path through pyopenxr: struct conversions and the session state machine
(:mod:`.convert`), the tracking source (:mod:`.source`), the per-frame wait/begin/end cycle
(:mod:`.frames`) and the swapchain sink (:mod:`.sink`)."""
