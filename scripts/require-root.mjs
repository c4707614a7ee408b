// Refuse plainly when the suite is started without root (it loads BPF programs,
// makes namespaces and cgroups, and opens /dev/kvm).
if (process.getuid && process.getuid() !== 0) {
  console.error('The kernel labs must run as root. Run the same command with sudo, e.g.: sudo npm test');
  console.error('(Unit tests alone run without root: npm run test:unit)');
  process.exit(1);
}
