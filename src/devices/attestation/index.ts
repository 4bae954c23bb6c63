export { appleAppAttestationRootFingerprint, appleAppAttestationRootPem } from './apple-root.ts';
export { verifyAppAttestAssertion, type AppAttestAssertionInput, type AppAttestAssertionVerdict } from './app-attest-assertion.ts';
export { AppAttestVerifier, type AppAttestConfig } from './app-attest.ts';
export { AttestationChallenges, challengePattern, type ChallengeBinding, type IssuedChallenge } from './challenges.ts';
export { attestationConfigFrom, attestationEnvShape, type AttestationConfig, type AttestationEnv } from './config.ts';
export { PlayIntegrityVerifier, type PlayIntegrityConfig } from './play-integrity.ts';
export { AttestationService, type AttestationCaller, type AttestationOutcome, type AssertionInput } from './service.ts';
export * from './types.ts';
