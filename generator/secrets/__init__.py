"""Site secrets: sops-encrypted at rest, sealed (or sops-encrypted for Flux) in the overlay."""
