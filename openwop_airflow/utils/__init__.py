"""Small pieces shared by the provider's operators, sensor and triggers: argument checks, the hook mixin,
idempotency keys, the interrupt's JSON form, the trigger event and the resilient run wait."""
