// The volsnap web console: a Preact app that talks only to the public HTTP API with the user's key.
import { render } from 'preact';
import { App } from './app.tsx';
import './console.css';

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
