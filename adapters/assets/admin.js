// Clairon operator dashboard: the retry buttons of the dead-letter list.
// Served at /static/admin.js; no inline script, so the page's CSP needs no 'unsafe-inline'.

const main = document.querySelector('main');

async function retry(button) {
  const row = button.closest('tr');
  const outcome = row.querySelector('.outcome');
  button.disabled = true;
  try {
    // Same use case as POST /api/v1/deliveries/{id}/retry, authenticated by the session cookie.
    const response = await fetch(`/admin/deliveries/${encodeURIComponent(button.dataset.id)}/retry`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-Clairon-Admin': '1' },
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    outcome.textContent = main.dataset.retried;
    row.dataset.retried = 'true';
    const count = document.getElementById('dead-count');
    if (count) count.textContent = String(Math.max(0, Number(count.textContent) - 1));
  } catch (error) {
    outcome.textContent = `${main.dataset.retryFailed}: ${error.message}`;
    button.disabled = false;
  }
}

for (const button of document.querySelectorAll('button.retry')) {
  button.addEventListener('click', () => retry(button));
}

// ---- Health logs (issue 13): the "Scheduled tasks" / "Syncs" tabs. ----
const tabs = [...document.querySelectorAll('[role="tab"]')];
function select(tab) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute('aria-selected', String(selected));
    const panel = document.getElementById(other.getAttribute('aria-controls'));
    if (panel) panel.hidden = !selected;
  }
}
for (const tab of tabs) {
  tab.addEventListener('click', () => select(tab));
}
