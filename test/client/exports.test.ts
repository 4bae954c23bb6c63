import { describe, expect, it } from 'vitest';

import * as client from 'tollgate/client';

describe('package exports', () => {
  it('serves the client as tollgate/client', () => {
    expect(typeof client.TollgateClient).toBe('function');
    expect(typeof client.MemoryTokenStorage).toBe('function');
  });
});
