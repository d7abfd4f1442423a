"""Where genxr meets a headset: tracking sources, the frame loop, the compositor and sinks."""
