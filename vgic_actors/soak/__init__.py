"""Race-hunting soaks: generated scenarios, campaigns on workers, findings, shrinking."""
