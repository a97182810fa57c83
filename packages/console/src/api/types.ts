// Names for the API's shapes the pages use, taken from the generated paths.
import type { paths } from './schema';

type Ok<P extends keyof paths, M extends 'get' | 'post'> = paths[P][M] extends { responses: { 200: { content: { 'application/json': infer T } } } }
  ? T
  : paths[P][M] extends { responses: { 201: { content: { 'application/json': infer T } } } }
    ? T
    : never;

export type User = Ok<'/users/me', 'get'>;
export type Org = Ok<'/orgs/{org}', 'get'>;
export type Role = NonNullable<Org['role']>;
export type Device = Ok<'/orgs/{org}/devices/{id}', 'get'>;
export type DevicePage = Ok<'/orgs/{org}/devices', 'get'>;
export type Channel = Ok<'/orgs/{org}/channels/{id}', 'get'>;
export type ContentType = Channel['content_type'];
export type DeviceSort = NonNullable<NonNullable<paths['/orgs/{org}/devices']['get']['parameters']['query']>['sort']>;
export type Endpoints = Ok<'/endpoints', 'get'>;
export type Registration = Ok<'/orgs/{org}/registrations/{id}', 'get'>;
export type RegistrationState = Registration['state'];
export type NewRegistration = NonNullable<paths['/orgs/{org}/registrations']['post']['requestBody']>['content']['application/json'];
export type EnrolmentToken = Ok<'/orgs/{org}/enrolment-tokens', 'get'>['tokens'][number];
export type Certificate = Ok<'/orgs/{org}/certificates/{serial}', 'get'>;
export type RevocationReason = NonNullable<NonNullable<NonNullable<paths['/orgs/{org}/certificates/{serial}/revoke']['post']['requestBody']>['content']['application/json']>['reason']>;
export type IdentityEvent = Ok<'/orgs/{org}/identity-events', 'get'>['events'][number];
export type ManufacturerCa = Ok<'/orgs/{org}/manufacturer-cas/{id}', 'get'>;
export type NewManufacturerCa = NonNullable<paths['/orgs/{org}/manufacturer-cas']['post']['requestBody']>['content']['application/json'];
export type ManufacturerCaChange = NonNullable<paths['/orgs/{org}/manufacturer-cas/{id}']['patch']['requestBody']>['content']['application/json'];
export type Twin = Ok<'/orgs/{org}/devices/{id}/twin', 'get'>;
export type TwinSummary = Ok<'/orgs/{org}/devices/{id}/twins', 'get'>['twins'][number];
export type TwinChange = Ok<'/orgs/{org}/devices/{id}/twin/history', 'get'>['changes'][number];
export type TwinPage = Ok<'/orgs/{org}/twins', 'get'>;
export type Presence = Ok<'/orgs/{org}/devices/{id}/presence', 'get'>;
export type PresenceBrief = DevicePage['presence'][string];
export type PresenceHistory = Ok<'/orgs/{org}/devices/{id}/presence/history', 'get'>;
export type FleetSummary = Ok<'/orgs/{org}/fleet/summary', 'get'>;
