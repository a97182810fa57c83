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

/** Checkboxes named `channel` and `group` (FormData.getAll), the organization's first 100 of each by name. */
export function ChannelAndGroupChoices({ channelsLegend = 'Channels it is connected to when it enrols', groupsLegend = 'Groups it joins when it enrols', channelIds = [], groupIds = [], channelsProblem, groupsProblem }: Choices) {
  const { channels, groups } = useChannelsAndGroups();
  return (
    <>
      <fieldset aria-describedby={channelsProblem}>
        <legend>{channelsLegend}</legend>
        {channels?.length === 0 && <span className="muted">The organization has no channels yet.</span>}
        {channels?.map((c) => (
          <label key={c.id} className="check">
            <input type="checkbox" name="channel" value={c.id} defaultChecked={channelIds.includes(c.id)} /> {c.name}
          </label>
        ))}
        {channels && <Unlisted name="channel" ids={channelIds} listed={channels} what="channel" />}
      </fieldset>
      <fieldset aria-describedby={groupsProblem}>
        <legend>{groupsLegend}</legend>
        {groups?.length === 0 && <span className="muted">The organization has no groups yet.</span>}
        {groups?.map((g) => (
          <label key={g.id} className="check">
            <input type="checkbox" name="group" value={g.id} defaultChecked={groupIds.includes(g.id)} /> {g.name}
          </label>
        ))}
        {groups && <Unlisted name="group" ids={groupIds} listed={groups} what="group" />}
      </fieldset>
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
