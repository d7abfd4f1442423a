"""Ray Serve: the deployments of the world model and the avatar (:mod:`.deployments`,
:mod:`.avatar`) with per-session state (:mod:`.sessions`), and the bus backend over their
DeploymentHandles (:mod:`.ray_bus`)."""
