import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

/** The console's first page: the pages themselves come with the console issue. */
function App() {
  return (
    <main>
      <h1>Fleetwire</h1>
      <p>The web console is on its way. The HTTP API and its reference are at <a href="/docs">/docs</a>.</p>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
