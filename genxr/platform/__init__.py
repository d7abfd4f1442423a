"""The spine every area plugs into: one message schema module (:mod:`.messages`), the bus
(:mod:`.bus`), one clock (:mod:`.clock`), one tracing API (:mod:`.tracing`) and the run
configuration (:mod:`.config`)."""
