// Mounts the panel: the page HighLevel shows in an iframe as Tandem's custom page.
import { mount } from 'svelte';
import App from './App.svelte';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
mount(App, { target });
