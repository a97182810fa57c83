// Previous and next over a list the platform pages (offset and limit), with where the page is.

export const pageSize = 20;

/** `always`: shown also when everything fits on one page; `testId`: of the "1–20 of 45" text. */
export function Pager({ offset, total, onChange, label, always = false, testId = 'page-info' }: { offset: number; total: number; onChange(offset: number): void; label: string; always?: boolean; testId?: string }) {
  if (!always && total <= pageSize && offset === 0) return null;
  return (
    <div className="pager" role="group" aria-label={`Pages of ${label}`}>
      <button type="button" className="secondary" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - pageSize))}>
        Previous
      </button>
      <span data-testid={testId}>
        {total === 0 ? '0' : `${offset + 1}–${Math.min(offset + pageSize, total)}`} of {total}
      </span>
      <button type="button" className="secondary" disabled={offset + pageSize >= total} onClick={() => onChange(offset + pageSize)}>
        Next
      </button>
    </div>
  );
}
