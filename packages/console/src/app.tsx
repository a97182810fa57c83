// The console's pages and the frame around them. Paths are the console's own (`/organizations/…`),
// apart from the API's (`/orgs/…`), so a reload of any page reaches index.html and not the API.
// Under /organizations/:org the routes are nested: their links and paths are relative to it.
import { createContext, lazy, Suspense, useContext, useEffect, type ReactNode } from 'react';
import { Link, Redirect, Route, Switch, useLocation, useParams } from 'wouter';
import { api } from './api/client';
import type { Org, Role } from './api/types';
import { RequireSession, useSession } from './session';
import { ErrorNote, useLoad } from './ui';
import { SignIn } from './pages/sign-in';
import { Organizations } from './pages/organizations';
import { Devices } from './pages/devices';
import { ConnectPage } from './pages/connect';
import { DevicePage } from './pages/device';
import { Channels } from './pages/channels';
import { ChannelPage } from './pages/channel';
import { DeviceImport } from './pages/device-import';
import { Groups } from './pages/groups';
import { GroupPage } from './pages/group';
import { Account } from './pages/account';
import { Members } from './pages/members';
import { Users } from './pages/users';
import { orgsChangedEvent } from './pages/invitations';

// pages few users open are loaded when first opened, so the console's first load stays small
const DeadLetters = lazy(() => import('./pages/dead-letters').then((m) => ({ default: m.DeadLetters })));
const Registrations = lazy(() => import('./pages/registrations').then((m) => ({ default: m.Registrations })));
const EnrolmentTokens = lazy(() => import('./pages/enrolment-tokens').then((m) => ({ default: m.EnrolmentTokens })));
const Certificates = lazy(() => import('./pages/certificates').then((m) => ({ default: m.Certificates })));
const CertificatePage = lazy(() => import('./pages/certificate').then((m) => ({ default: m.CertificatePage })));
const FleetEvents = lazy(() => import('./pages/fleet-events').then((m) => ({ default: m.FleetEvents })));
const IdentityEvents = lazy(() => import('./pages/identity-events').then((m) => ({ default: m.IdentityEvents })));
const ManufacturerCas = lazy(() => import('./pages/manufacturer-cas').then((m) => ({ default: m.ManufacturerCas })));
const ManufacturerCaPage = lazy(() => import('./pages/manufacturer-ca').then((m) => ({ default: m.ManufacturerCaPage })));
const TwinQuery = lazy(() => import('./pages/twin-query').then((m) => ({ default: m.TwinQuery })));
const FleetOverview = lazy(() => import('./pages/fleet-overview').then((m) => ({ default: m.FleetOverview })));
const EnrolDevice = lazy(() => import('./pages/enrol-device').then((m) => ({ default: m.EnrolDevice })));

/** The device identity pages, one tab of the organization's with their own row of links (so the tabs fit 1280 px on one line). */
const identityPages: [href: string, label: string][] = [
  ['/registrations', 'Registrations'],
  ['/enrolment-tokens', 'Enrolment tokens'],
  ['/certificates', 'Certificates'],
  ['/manufacturer-cas', 'Manufacturer CAs'],
  ['/identity-events', 'Events'],
  ['/connect', 'Connect a device'],
];

// which roles hold the identity actions (docs/permissions.md): every member reads, a viewer changes nothing
const identityReaders: readonly Role[] = ['owner', 'admin', 'operator', 'viewer'];
const identityWriters: readonly Role[] = ['owner', 'admin', 'operator'];
// and the twin actions: every member reads twins, a viewer changes none
const twinWriters: readonly Role[] = ['owner', 'admin', 'operator'];

/** The organization the pages under /organizations/:org work in, and what the user may do there. */
interface OrgScope {
  org: Org;
  role: Role | undefined;
  /** A viewer sees no edit controls (the platform refuses their changes anyway). */
  canEdit: boolean;
  /** An owner or admin (or a platform admin): sees the dead letters (`dead-letters:read`) and deletes them. */
  canAdminister: boolean;
  /** `identity:read`: sees registrations, enrolment tokens, certificates and manufacturer CAs. */
  canReadIdentity: boolean;
  /** `identity:write`: registers devices, makes tokens, suspends, resets and revokes, adds and changes manufacturer CAs. */
  canWriteIdentity: boolean;
  /** `twins:write`: changes twins' desired state and tags (every member has `twins:read`). */
  canWriteTwins: boolean;
}

const OrgContext = createContext<OrgScope | undefined>(undefined);

export function useOrg(): OrgScope {
  const scope = useContext(OrgContext);
  if (!scope) throw new Error('useOrg outside an organization');
  return scope;
}

function TopBar() {
  const { user, signOut } = useSession();
  const [location, navigate] = useLocation();
  const current = /^\/organizations\/([^/]+)/.exec(location)?.[1];
  // loaded again on a switch, so an organization created since is in the menu
  const orgs = useLoad(() => (user ? api.GET('/orgs', { params: { query: { limit: 100 } } }) : Promise.resolve({ data: undefined })), [user?.id, current]);
  const { reload } = orgs;
  useEffect(() => {
    window.addEventListener(orgsChangedEvent, reload);
    return () => window.removeEventListener(orgsChangedEvent, reload);
  }, [reload]);
  return (
    <header className="top">
      <Link href="/organizations" className="brand">
        Fleetwire
      </Link>
      {user && (
        <>
          <label className="switch">
            <span className="visually-hidden">Organization</span>
            <select aria-label="Organization" value={current ?? ''} onChange={(e) => e.target.value && navigate(`/organizations/${e.target.value}/devices`)}>
              <option value="">Choose an organization…</option>
              {orgs.data?.orgs.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.name}
                </option>
              ))}
            </select>
          </label>
          <span className="grow" />
          {user.role === 'admin' && (
            <Link href="/admin/users" className="muted">
              Users
            </Link>
          )}
          <Link href="/account" className="muted" data-testid="user" title="Your account">
            {user.email}
          </Link>
          <button type="button" className="secondary" onClick={() => void signOut()}>
            Sign out
          </button>
        </>
      )}
    </header>
  );
}

const within = (location: string, href: string) => location === href || location.startsWith(`${href}/`);

/** A link of the organization's tabs, marked as the current page when it (or a page below it, or one of `covers`) is open. */
function Tab({ href, covers = [href], children }: { href: string; covers?: string[]; children: ReactNode }) {
  const [location] = useLocation();
  const current = covers.some((c) => within(location, c));
  return (
    <Link href={href} aria-current={current ? 'page' : undefined}>
      {children}
    </Link>
  );
}

/** An identity page: the identity pages' own links above it, and the page loaded when first opened. */
function IdentityPage({ children }: { children: ReactNode }) {
  const [location] = useLocation();
  return (
    <>
      <nav className="views" aria-label="Device identity">
        {identityPages.map(([href, label]) => (
          <Link key={href} href={href} aria-current={within(location, href) ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      <Suspense fallback={<p className="muted">Loading…</p>}>{children}</Suspense>
    </>
  );
}

function InOrg({ children }: { children: ReactNode }) {
  const { org: id } = useParams<{ org: string }>();
  const { user } = useSession();
  const org = useLoad(() => api.GET('/orgs/{org}', { params: { path: { org: id } } }), [id]);
  if (org.error) return <ErrorNote error={org.error} />;
  if (!org.data) return <p className="muted">Loading…</p>;
  const role = org.data.role;
  const canEdit = role ? role !== 'viewer' : user?.role === 'admin';
  const canAdminister = role ? role === 'owner' || role === 'admin' : user?.role === 'admin';
  const canReadIdentity = role ? identityReaders.includes(role) : user?.role === 'admin';
  const canWriteIdentity = role ? identityWriters.includes(role) : user?.role === 'admin';
  const canWriteTwins = role ? twinWriters.includes(role) : user?.role === 'admin';
  return (
    <OrgContext.Provider value={{ org: org.data, role, canEdit, canAdminister, canReadIdentity, canWriteIdentity, canWriteTwins }}>
      <nav className="tabs" aria-label="Organization">
        <h1>{org.data.name}</h1>
        <span className="muted">{role ? `your role: ${role}` : 'platform admin'}</span>
        <Tab href="/overview">Overview</Tab>
        <Tab href="/devices">Devices</Tab>
        <Tab href="/channels">Channels</Tab>
        <Tab href="/groups">Groups</Tab>
        <Tab href="/members">Members</Tab>
        <Tab href="/events">Events</Tab>
        {canReadIdentity && (
          <Tab href="/registrations" covers={identityPages.map(([href]) => href)}>
            Identity
          </Tab>
        )}
        {canAdminister && <Tab href="/dead-letters">Dead letters</Tab>}
      </nav>
      {children}
    </OrgContext.Provider>
  );
}

export function App() {
  return (
    <>
      <TopBar />
      <main>
        <Switch>
          <Route path="/sign-in" component={SignIn} />
          <Route path="/">
            <Redirect to="/organizations" replace />
          </Route>
          <Route path="/organizations">
            <RequireSession>
              <Organizations />
            </RequireSession>
          </Route>
          <Route path="/account">
            <RequireSession>
              <Account />
            </RequireSession>
          </Route>
          <Route path="/admin/users">
            <RequireSession>
              <Users />
            </RequireSession>
          </Route>
          <Route path="/organizations/:org" nest>
            <RequireSession>
              <InOrg>
                <Switch>
                  <Route path="/overview">
                    <Suspense fallback={<p className="muted">Loading…</p>}>
                      <FleetOverview />
                    </Suspense>
                  </Route>
                  <Route path="/devices" component={Devices} />
                  <Route path="/devices/import" component={DeviceImport} />
                  <Route path="/devices/twins">
                    <Suspense fallback={<p className="muted">Loading…</p>}>
                      <TwinQuery />
                    </Suspense>
                  </Route>
                  <Route path="/devices/:id/connect" component={ConnectPage} />
                  <Route path="/devices/:id" component={DevicePage} />
                  <Route path="/channels" component={Channels} />
                  <Route path="/channels/:id" component={ChannelPage} />
                  <Route path="/groups" component={Groups} />
                  <Route path="/groups/:id" component={GroupPage} />
                  <Route path="/members" component={Members} />
                  <Route path="/events">
                    <Suspense fallback={<p className="muted">Loading…</p>}>
                      <FleetEvents />
                    </Suspense>
                  </Route>
                  <Route path="/dead-letters">
                    <Suspense fallback={<p className="muted">Loading…</p>}>
                      <DeadLetters />
                    </Suspense>
                  </Route>
                  <Route path="/registrations">
                    <IdentityPage>
                      <Registrations />
                    </IdentityPage>
                  </Route>
                  <Route path="/enrolment-tokens">
                    <IdentityPage>
                      <EnrolmentTokens />
                    </IdentityPage>
                  </Route>
                  <Route path="/certificates">
                    <IdentityPage>
                      <Certificates />
                    </IdentityPage>
                  </Route>
                  <Route path="/certificates/:serial">
                    <IdentityPage>
                      <CertificatePage />
                    </IdentityPage>
                  </Route>
                  <Route path="/manufacturer-cas">
                    <IdentityPage>
                      <ManufacturerCas />
                    </IdentityPage>
                  </Route>
                  <Route path="/manufacturer-cas/:id">
                    <IdentityPage>
                      <ManufacturerCaPage />
                    </IdentityPage>
                  </Route>
                  <Route path="/identity-events">
                    <IdentityPage>
                      <IdentityEvents />
                    </IdentityPage>
                  </Route>
                  <Route path="/connect">
                    <IdentityPage>
                      <EnrolDevice />
                    </IdentityPage>
                  </Route>
                  <Route>
                    <Redirect to="/devices" replace />
                  </Route>
                </Switch>
              </InOrg>
            </RequireSession>
          </Route>
          <Route>
            <h1>Not found</h1>
            <p>
              There is no such page. <Link href="/organizations">Your organizations</Link>
            </p>
          </Route>
        </Switch>
      </main>
    </>
  );
}
