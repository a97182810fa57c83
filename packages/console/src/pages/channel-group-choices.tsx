// The organization's channels and groups as checkboxes, for the forms that say what a device joins
// when it enrols (a registration, a manufacturer CA); and the names of the ones a row lists by id.
import { api } from '../api/client';
import { useOrg } from '../app';
import { useLoad } from '../ui';

const listedMax = 100; // the first 100 of each, by name: the pickers' and the names' reach

function useChannelsAndGroups() {
  const { org } = useOrg();
  const channels = useLoad(() => api.GET('/orgs/{org}/channels', { params: { path: { org: org.id }, query: { limit: listedMax, sort: 'name' } } }), [org.id]);
  const groups = useLoad(() => api.GET('/orgs/{org}/groups', { params: { path: { org: org.id }, query: { limit: listedMax, sort: 'name' } } }), [org.id]);
  return { channels: channels.data?.channels, groups: groups.data?.groups };
}

interface Choices {
  /** The legends of the two fieldsets. */
  channelsLegend?: string;
  groupsLegend?: string;
  /** Checked at first (an edit form's current values). */
  channelIds?: readonly string[];
  groupIds?: readonly string[];
  /** The id of a refusal the fieldset concerns (aria-describedby), marking it as the one to correct. */
  channelsProblem?: string | undefined;
  groupsProblem?: string | undefined;
}

/**
 * One fieldset of checkboxes named `name` (FormData.getAll), one an item by name, those of
 * `checked` ticked; the checked ones the list does not reach are kept (see Unlisted).
 */
export function Checkboxes({ name, what, legend, items, checked = [], problem }: { name: string; what: string; legend: string; items: readonly { id: string; name: string }[] | undefined; checked?: readonly string[]; problem?: string | undefined }) {
  return (
    <fieldset aria-describedby={problem}>
      <legend>{legend}</legend>
      {items?.length === 0 && <span className="muted">The organization has no {what}s yet.</span>}
      {items?.map((item) => (
        <label key={item.id} className="check">
          <input type="checkbox" name={name} value={item.id} defaultChecked={checked.includes(item.id)} /> {item.name}
        </label>
      ))}
      {items && <Unlisted name={name} ids={checked} listed={items} what={what} />}
    </fieldset>
  );
}

/** Checkboxes named `channel` and `group`, the organization's first 100 of each by name. */
export function ChannelAndGroupChoices({ channelsLegend = 'Channels it is connected to when it enrols', groupsLegend = 'Groups it joins when it enrols', channelIds = [], groupIds = [], channelsProblem, groupsProblem }: Choices) {
  const { channels, groups } = useChannelsAndGroups();
  return (
    <>
      <Checkboxes name="channel" what="channel" legend={channelsLegend} items={channels} checked={channelIds} problem={channelsProblem} />
      <Checkboxes name="group" what="group" legend={groupsLegend} items={groups} checked={groupIds} problem={groupsProblem} />
    </>
  );
}

/**
 * The chosen ones past the first 100 (no checkbox of theirs): kept as they are, so that saving a
 * form does not drop them. With fewer than 100 listed, a chosen one not listed is gone, and dropped.
 */
function Unlisted({ name, ids, listed, what }: { name: string; ids: readonly string[]; listed: readonly { id: string }[]; what: string }) {
  const shown = new Set(listed.map((l) => l.id));
  const kept = listed.length < listedMax ? [] : ids.filter((id) => !shown.has(id));
  if (kept.length === 0) return null;
  return (
    <>
      {kept.map((id) => (
        <input key={id} type="hidden" name={name} value={id} />
      ))}
      <span className="muted">
        and {kept.length} {what}
        {kept.length === 1 ? '' : 's'} past the first {listedMax}, kept
      </span>
    </>
  );
}

/** The names of the organization's channels and groups by id (one request each, whatever the rows). */
export function useChannelAndGroupNames(): { channel(id: string): string | undefined; group(id: string): string | undefined } {
  const { channels, groups } = useChannelsAndGroups();
  const channelNames = new Map(channels?.map((c) => [c.id, c.name]));
  const groupNames = new Map(groups?.map((g) => [g.id, g.name]));
  return { channel: (id) => channelNames.get(id), group: (id) => groupNames.get(id) };
}
