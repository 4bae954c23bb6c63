import { BlockList, isIP } from 'node:net';

import { open, type CityResponse, type Reader } from 'maxmind';

import type { Logger } from '../logger.ts';
import type { RiskConfig } from './config.ts';
import { normalizeIp } from './ip.ts';

/** The location of a request, as far as the configured source can tell. */
export interface GeoObservation {
  latitude?: number;
  longitude?: number;
  /** ISO 3166-1 alpha-2 country code, upper case. */
  country?: string;
}

/**
 * Location reported by a trusted edge proxy in request headers. The gateway fills it in only when
 * the socket peer is a configured trusted proxy, so a client cannot forge it.
 */
export type EdgeLocation = GeoObservation;

export interface GeoLocator {
  readonly source: 'maxmind' | 'edge-headers' | 'table' | 'disabled';
  locate(ip: string | undefined, edge: EdgeLocation | undefined): GeoObservation | undefined;
}

const earthRadiusKm = 6371.0088;

/** Great-circle distance in kilometres (haversine formula, mean Earth radius). */
export function distanceKm(from: { latitude: number; longitude: number }, to: { latitude: number; longitude: number }): number {
  const radians = (degrees: number) => (degrees * Math.PI) / 180;
  const dLat = radians(to.latitude - from.latitude);
  const dLon = radians(to.longitude - from.longitude);
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(radians(from.latitude)) * Math.cos(radians(to.latitude)) * Math.sin(dLon / 2) ** 2;
  return 2 * earthRadiusKm * Math.asin(Math.min(1, Math.sqrt(a)));
}

function validCoordinates(latitude: number | undefined, longitude: number | undefined): boolean {
  return latitude !== undefined && longitude !== undefined && Number.isFinite(latitude) && Number.isFinite(longitude) && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180;
}

/** Keeps only well-formed coordinates and a two-letter country. */
export function cleanObservation(observation: GeoObservation): GeoObservation | undefined {
  const result: GeoObservation = {};
  if (validCoordinates(observation.latitude, observation.longitude)) {
    result.latitude = observation.latitude;
    result.longitude = observation.longitude;
  }
  if (observation.country && /^[A-Za-z]{2}$/.test(observation.country)) result.country = observation.country.toUpperCase();
  return result.latitude !== undefined || result.country !== undefined ? result : undefined;
}

/** Looks addresses up in a MaxMind City or Country database (`.mmdb`). */
export class MaxMindLocator implements GeoLocator {
  readonly source = 'maxmind' as const;

  constructor(private readonly reader: Reader<CityResponse>) {}

  static async open(file: string): Promise<MaxMindLocator> {
    return new MaxMindLocator(await open<CityResponse>(file));
  }

  locate(ip: string | undefined): GeoObservation | undefined {
    if (!ip || isIP(normalizeIp(ip)) === 0) return undefined;
    const record = this.reader.get(normalizeIp(ip));
    if (!record) return undefined;
    return cleanObservation({ latitude: record.location?.latitude, longitude: record.location?.longitude, country: record.country?.iso_code });
  }
}

/** Believes the coordinates or country a trusted edge proxy put in the request headers. */
export class EdgeHeaderLocator implements GeoLocator {
  readonly source = 'edge-headers' as const;

  locate(_ip: string | undefined, edge: EdgeLocation | undefined): GeoObservation | undefined {
    return edge ? cleanObservation(edge) : undefined;
  }
}

/** A fixed table of address ranges, for tests and small private deployments. */
export class TableLocator implements GeoLocator {
  readonly source = 'table' as const;
  private readonly ranges: Array<{ list: BlockList; location: GeoObservation }> = [];

  constructor(table: Record<string, GeoObservation>) {
    for (const [range, location] of Object.entries(table)) {
      const [address = '', bits] = range.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      const list = new BlockList();
      if (bits === undefined) list.addAddress(address, family);
      else list.addSubnet(address, Number(bits), family);
      this.ranges.push({ list, location });
    }
  }

  locate(ip: string | undefined): GeoObservation | undefined {
    if (!ip) return undefined;
    const address = normalizeIp(ip);
    const family = isIP(address);
    if (family === 0) return undefined;
    const found = this.ranges.find((range) => range.list.check(address, family === 6 ? 'ipv6' : 'ipv4'));
    return found ? cleanObservation(found.location) : undefined;
  }
}

const disabledLocator: GeoLocator = { source: 'disabled', locate: () => undefined };

/**
 * Picks the geolocation source: a MaxMind database when configured, else trusted edge headers when
 * their names are configured, else none, which turns the impossible-travel signal off.
 */
export async function openGeoLocator(config: RiskConfig['geo'], logger: Logger): Promise<GeoLocator> {
  if (config.databaseFile) {
    const locator = await MaxMindLocator.open(config.databaseFile);
    logger.info({ file: config.databaseFile }, 'geolocation from a MaxMind database');
    return locator;
  }
  if (config.countryHeader || (config.latitudeHeader && config.longitudeHeader)) {
    logger.info({ latitudeHeader: config.latitudeHeader, longitudeHeader: config.longitudeHeader, countryHeader: config.countryHeader }, 'geolocation from trusted edge-proxy headers');
    return new EdgeHeaderLocator();
  }
  logger.info('geolocation disabled: set TOLLGATE_GEOIP_DATABASE or the TOLLGATE_GEO_*_HEADER variables to detect impossible travel');
  return disabledLocator;
}

/** Reads the configured location headers; call only for requests whose peer is a trusted proxy. */
export function edgeLocationFrom(headers: Record<string, string | string[] | undefined>, config: RiskConfig['geo']): EdgeLocation | undefined {
  const header = (name: string | undefined) => {
    if (!name) return undefined;
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const latitude = header(config.latitudeHeader);
  const longitude = header(config.longitudeHeader);
  const country = header(config.countryHeader);
  return cleanObservation({
    latitude: latitude === undefined ? undefined : Number(latitude),
    longitude: longitude === undefined ? undefined : Number(longitude),
    country,
  });
}
