// `hush-vault/sdk`: the SDK, re-exported for code that already depends on the
// server package. New code should depend on `hush-vault-sdk` itself.
export * from 'hush-vault-sdk';
