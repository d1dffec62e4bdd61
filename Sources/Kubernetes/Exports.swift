// Users of the client see the wire types and errors as part of it.
@_exported import KubernetesWire
