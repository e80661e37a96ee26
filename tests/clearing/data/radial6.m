function mpc = radial6
%RADIAL6  A 6-bus, 11 kV radial feeder for p2pex's MATPOWER import test.
%   Written for the test (not taken from elsewhere): a main feeder 1-2-3-4
%   and a branch 2-5-6, the main grid at bus 1 and two distributed
%   generators with quadratic costs. Line data in per unit on 10 MVA.

%% MATPOWER Case Format : Version 2
mpc.version = '2';

%%-----  Power Flow Data  -----%%
%% system MVA base
mpc.baseMVA = 10;

%% bus data
%	bus_i	type	Pd	Qd	Gs	Bs	area	Vm	Va	baseKV	zone	Vmax	Vmin
mpc.bus = [
	1	3	0	0	0	0	1	1	0	11	1	1.1	0.9;
	2	1	0.08	0.02	0	0	1	1	0	11	1	1.1	0.9;
	3	1	0.12	0.03	0	0	1	1	0	11	1	1.1	0.9;
	4	1	0.05	0.01	0	0	1	1	0	11	1	1.1	0.9;
	5	1	0.10	0.02	0	0	1	1	0	11	1	1.1	0.9;
	6	1	0.06	0.01	0	0	1	1	0	11	1	1.1	0.9;
];

%% generator data
%	bus	Pg	Qg	Qmax	Qmin	Vg	mBase	status	Pmax	Pmin
mpc.gen = [
	1	0	0	1	-1	1	10	1	1.0	0;
	4	0	0	0.1	-0.1	1	10	1	0.15	0;
	6	0	0	0.1	-0.1	1	10	1	0.08	0.01;
];

%% branch data
%	fbus	tbus	r	x	b	rateA	rateB	rateC	ratio	angle	status	angmin	angmax
mpc.branch = [
	1	2	0.0080	0.0040	0	0.5	0.5	0.5	0	0	1	-360	360;
	2	3	0.0150	0.0080	0	0.3	0.3	0.3	0	0	1	-360	360;
	3	4	0.0200	0.0100	0	0.2	0.2	0.2	0	0	1	-360	360;
	2	5	0.0120	0.0060	0	0.07	0.3	0.3	0	0	1	-360	360;
	5	6	0.0250	0.0120	0	0	0	0	0	0	1	-360	360;
	4	6	0.0300	0.0150	0	0.2	0.2	0.2	0	0	0	-360	360;
];

%%-----  OPF Data  -----%%
%% generator cost data
%	2	startup	shutdown	n	c(n-1)	...	c0
mpc.gencost = [
	2	0	0	3	0.5	60	0;
	2	0	0	3	2.0	40	0;
	2	0	0	3	4.0	45	0;
];
