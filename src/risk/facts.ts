import type { FastifyRequest } from 'fastify';

import type { Config } from '../config.ts';
import { edgeLocationFrom, type EdgeLocation } from './geo.ts';
import { TrustedProxies } from './ip.ts';

export interface RiskRequestFacts {
  deviceHint?: string | undefined;
  edgeLocation?: EdgeLocation | undefined;
}

/** Bounds the `X-Device-Id` header: it only keys a counter, so anything longer is noise. */
const deviceHintPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the reader of the request facts the risk engine uses beyond the client IP (which Fastify's
 * `trustProxy` already derives). Location headers are believed only when the socket peer is a
 * configured trusted proxy, because any client can send them.
 */
export function riskFactsReader(config: Config): (request: FastifyRequest) => RiskRequestFacts {
  const proxies = new TrustedProxies(config.trustedProxies);
  const geo = config.risk.geo;
  const readsHeaders = Boolean(geo.countryHeader || (geo.latitudeHeader && geo.longitudeHeader));

  return (request) => {
    const hint = request.headers['x-device-id'];
    const deviceHint = typeof hint === 'string' && deviceHintPattern.test(hint) ? hint : undefined;
    const trustedPeer = readsHeaders && proxies.includes(request.socket.remoteAddress);
    return { deviceHint, edgeLocation: trustedPeer ? edgeLocationFrom(request.headers, geo) : undefined };
  };
}
