"""`deskfleet agent`: the sidecar that counts a host's live sessions and reports them."""
